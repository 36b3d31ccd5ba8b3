package cli

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/cfmint/cfmint/internal/config"
	"github.com/cfmint/cfmint/internal/field"
	"github.com/cfmint/cfmint/internal/logsafe"
	"github.com/cfmint/cfmint/internal/mint"
	"github.com/cfmint/cfmint/internal/netaddr"
	"github.com/cfmint/cfmint/internal/policy"
)

// stderrUI prints a mint's messages for a person at a terminal.
type stderrUI struct {
	w       io.Writer
	verbose bool
}

func (u stderrUI) Infof(f string, a ...any)    { fmt.Fprintf(u.w, f+"\n", a...) }
func (u stderrUI) Noticef(f string, a ...any)  { fmt.Fprintf(u.w, "notice: "+f+"\n", a...) }
func (u stderrUI) Warningf(f string, a ...any) { fmt.Fprintf(u.w, "warning: "+f+"\n", a...) }
func (u stderrUI) Debugf(f string, a ...any) {
	if u.verbose {
		fmt.Fprintf(u.w, "debug: "+f+"\n", a...)
	}
}

// lines collects a flag that may be given more than once.
type lines []string

func (l *lines) String() string     { return strings.Join(*l, "\n") }
func (l *lines) Set(s string) error { *l = append(*l, s); return nil }

// common are the flags every command that calls Cloudflare takes, named like the action's inputs.
type common struct {
	bootstrap, accountID, owner, timeout string
	verbose                              bool
}

func (c *common) register(fs *flag.FlagSet, e Env) {
	fs.StringVar(&c.bootstrap, "bootstrap-token", "", "a token that may create tokens (default $CLOUDFLARE_BOOTSTRAP_TOKEN)")
	fs.StringVar(&c.accountID, "account-id", getenv(e, "CLOUDFLARE_ACCOUNT_ID"), "the account (default $CLOUDFLARE_ACCOUNT_ID)")
	fs.StringVar(&c.owner, "token-owner", "account", "who owns the tokens: account or user")
	fs.StringVar(&c.timeout, "timeout", "2m", "how long the command may take")
	fs.BoolVar(&c.verbose, "verbose", false, "print debug messages")
}

// inputs turns the common flags into the action's inputs, so that one validator serves both.
func (c *common) inputs(e Env) *config.Inputs {
	tok := c.bootstrap
	if tok == "" {
		// Read from the environment rather than a flag default, so that --help never prints it.
		tok = getenv(e, "CLOUDFLARE_BOOTSTRAP_TOKEN")
	}
	// In a terminal the environment is the user's own, so the API base comes from wrangler's
	// variable; the action reads only its api-base-url input, since an earlier step of a job can
	// write the job's environment.
	return &config.Inputs{BootstrapToken: tok, AccountID: c.accountID, TokenOwner: c.owner, Timeout: c.timeout, APIBaseURL: getenv(e, "CLOUDFLARE_API_BASE_URL"), ExportEnvSet: true}
}

// warnBase says when the bootstrap token is about to go somewhere other than Cloudflare's API.
func warnBase(e Env, cfg *config.Config) {
	// Through a broker the bootstrap token is the broker's, and the API base is not used.
	if cfg.Broker == "" && !config.IsCloudflareHost(cfg.APIBase) {
		fmt.Fprintf(e.Stderr, "warning: $CLOUDFLARE_API_BASE_URL sends the bootstrap token to %s, which is not Cloudflare's API (%s); unset it unless that is a stand-in you trust\n", logsafe.String(cfg.APIBase), config.DefaultAPIBase)
	}
}

func getenv(e Env, k string) string {
	v, _ := e.Lookup(k)
	return v
}

// engine is the mint engine with cfg's bootstrap token, talking to cfg's API base.
func (e Env) engine(ui stderrUI, cfg *config.Config) *mint.Engine {
	return mint.New(cfg.BootstrapToken, mint.Options{BaseURL: cfg.APIBase, HTTPClient: e.HTTPClient, UI: ui})
}

// resolve plans the mint cfg asks for: the engine's lookups, and meanwhile the terminal's
// address when the token is to be pinned to it. The trace fallback is $CFMINT_TRACE_FALLBACK_URL
// as the user set it: a terminal's environment is the user's own, not one an earlier step of a
// job could write.
func (e Env) resolve(ctx context.Context, ui stderrUI, cfg *config.Config) (*mint.Plan, error) {
	r := cfg.MintRequest()
	if cfg.IPFilter.Runner {
		fallback := strings.TrimSpace(getenv(e, "CFMINT_TRACE_FALLBACK_URL"))
		r.Pin = func(ctx context.Context) ([]netip.Prefix, error) {
			return netaddr.Pin(ctx, e.HTTPClient, cfg.APIBase, fallback, ui)
		}
	}
	p, err := e.engine(ui, cfg).Plan(ctx, r)
	if err == nil && cfg.IPFilter.None {
		ui.Warningf("ip-filter is none: the token will work from any address on the internet until it expires or is revoked. Prefer the default, runner.")
	}
	return p, err
}

// flagFor names the flags (or arguments) whose names differ from the inputs they stand for.
var flagFor = map[string]string{"api-base-url": "$CLOUDFLARE_API_BASE_URL", "sweep-older-than": "--older-than", "sweep-repository": "--repo", "token-id": "TOKEN_ID"}

// phrase words the engine's and the validator's errors for a terminal: fields are the flags the
// user typed, and what a workflow's post phase would do is the user's to do.
var phrase = mint.Phrase{
	Field: func(name string) string {
		if f, ok := flagFor[name]; ok {
			return f
		}
		return "--" + name
	},
	Unseen: func(name string) string {
		return "look for tokens named " + logsafe.Quote(name) + " in the dashboard, or run `cfmint sweep` once they expire"
	},
	Undo: func(id string) string { return "run `" + revokeCommand("", id) + "`" },
}

// revokeCommand is the command that revokes token id: through broker when it minted the token.
func revokeCommand(broker, id string) string {
	if broker != "" {
		return "cfmint revoke --broker " + logsafe.String(broker) + " " + logsafe.String(id)
	}
	return "cfmint revoke " + logsafe.String(id)
}

// emptyBootstrap is what each command says when neither --bootstrap-token nor
// $CLOUDFLARE_BOOTSTRAP_TOKEN is set: the validator's sentence speaks of a workflow's inputs.
var emptyBootstrap = map[string]string{
	"mint":   "give a Cloudflare token that may create tokens, or --broker URL to mint through a cfmint broker instead",
	"revoke": "give a Cloudflare token that may delete the token (such as the bootstrap token that minted it), or --broker URL when a cfmint broker minted it",
}

// flagErrors prints every problem on its own line, naming flags as the user typed them.
func flagErrors(w io.Writer, cmd string, err error) {
	flagErrorsVia(w, cmd, "", err)
}

// flagErrorsVia is flagErrors for a mint through broker: a token to undo is revoked through it.
func flagErrorsVia(w io.Writer, cmd, broker string, err error) {
	ph := phrase
	ph.Undo = func(id string) string { return "run `" + revokeCommand(broker, id) + "`" }
	for _, e := range mint.Split(err) {
		msg := ph.One(e)
		var fe *field.Error
		if errors.As(e, &fe) && fe.Name == "bootstrap-token" && strings.HasPrefix(fe.Err.Error(), "is empty") {
			todo, ok := emptyBootstrap[cmd]
			if !ok {
				todo = "give a Cloudflare token that may create tokens"
			}
			msg = "--bootstrap-token: is empty, and so is $CLOUDFLARE_BOOTSTRAP_TOKEN; " + todo
		}
		fmt.Fprintf(w, "cfmint %s: %s\n", cmd, msg)
	}
}

func newFlagSet(e Env, name, usage string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(e.Stderr)
	fs.Usage = func() {
		fmt.Fprint(e.Stderr, usage)
		fmt.Fprintln(e.Stderr, "\nFlags:")
		// Hidden flags (old names kept for scripts) are left out of the help.
		shown := flag.NewFlagSet(name, flag.ContinueOnError)
		shown.SetOutput(e.Stderr)
		fs.VisitAll(func(f *flag.Flag) {
			if !strings.HasPrefix(f.Usage, hiddenFlag) {
				shown.Var(f.Value, f.Name, f.Usage)
			}
		})
		shown.PrintDefaults()
	}
	return fs
}

// hiddenFlag starts the usage of a flag --help does not list.
const hiddenFlag = "(hidden) "

// parse parses flags; it returns an exit code and false when the command should stop.
func parse(fs *flag.FlagSet, args []string) (int, bool) {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return ExitOK, false
		}
		return ExitUsage, false
	}
	return 0, true
}

func withTimeout(ctx context.Context, cfg *config.Config) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, cfg.Timeout)
}

const mintUsage = `Usage: cfmint mint [flags]

Mints a token and prints it on stdout; everything else goes to stderr:

  CLOUDFLARE_API_TOKEN=$(cfmint mint --preset dns-edit --zones example.com --ttl 5m)

The token is not revoked when the command ends: it expires after --ttl, or revoke
it early with 'cfmint revoke TOKEN_ID' (the id is printed on stderr, and in --format json).

With --broker URL the token comes from a cfmint broker, in exchange for the CI job's
OIDC ID token ($CFMINT_ID_TOKEN, else the GitHub runner's, or the variable
--id-token-env names): no bootstrap token is needed. Revoke it early with
'cfmint revoke --broker URL TOKEN_ID' and a fresh ID token: the broker takes each once.

Exit codes: 0 minted, 1 Cloudflare refused or a check failed, 2 bad flags.
`

func mintCmd(ctx context.Context, e Env, args []string) int {
	fs := newFlagSet(e, "mint", mintUsage)
	var c common
	c.register(fs, e)
	var perms lines
	preset := fs.String("preset", "", "a minimum-permission set: "+strings.Join(policy.PresetNames(), ", "))
	fs.Var(&perms, "permissions", "permission groups, comma-separated; may be repeated")
	zones := fs.String("zones", "", "zone names or ids the zone permissions apply to; * for every zone of the account")
	buckets := fs.String("r2-buckets", "", "R2 buckets the bucket permissions apply to (eu:name for a jurisdiction)")
	ttl := fs.String("ttl", "", "how long the token lives, 1m to 6h (default 15m; with --broker, the rule's max_ttl when shorter)")
	ipf := fs.String("ip-filter", "runner", "runner, none, or CIDRs; runner may be combined with CIDRs")
	name := fs.String("name", "", "the token's name (default cfmint:<repo or local>:<purpose>:...)")
	lasting := fs.Bool("allow-lasting-access", false, "allow groups that can create access outliving the token (account members, identity providers, service tokens, ...)")
	dry := fs.Bool("dry-run", false, "print the request that would be sent, and create nothing")
	format := fs.String("format", "text", "text (the token alone) or json (token, id, expiry, filter)")
	bf := registerBroker(fs, "mint")
	if code, ok := parse(fs, args); !ok {
		return code
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(e.Stderr, "cfmint mint: unexpected argument %s; see cfmint mint --help\n", logsafe.Quote(fs.Arg(0)))
		return ExitUsage
	}
	if *format != "text" && *format != "json" {
		fmt.Fprintf(e.Stderr, "cfmint mint: --format: %s is not a format; use text or json\n", logsafe.Quote(*format))
		return ExitUsage
	}
	in := c.inputs(e)
	in.Preset, in.Permissions, in.Zones, in.R2Buckets, in.TTL, in.IPFilter, in.Name = *preset, strings.Join(perms, "\n"), *zones, *buckets, *ttl, *ipf, *name
	bf.apply(in)
	in.AllowLastingAccess = strconv.FormatBool(*lasting)
	cfg, err := config.Validate(in, terminalContext(e))
	if err = errors.Join(bf.check(), err); err != nil {
		flagErrors(e.Stderr, "mint", err)
		return ExitUsage
	}
	warnBase(e, cfg)
	ctx, cancel := withTimeout(ctx, cfg)
	defer cancel()
	ui := stderrUI{w: e.Stderr, verbose: c.verbose}
	if *dry {
		plan, err := e.resolve(ctx, ui, cfg)
		if err != nil {
			flagErrors(e.Stderr, "mint", err)
			return ExitFail
		}
		pv, err := mint.Preview(cfg.APIBase, plan)
		if err != nil {
			fmt.Fprintf(e.Stderr, "cfmint mint: %v\n", err)
			return ExitFail
		}
		b, _ := json.MarshalIndent(pv, "", "  ")
		fmt.Fprintln(e.Stdout, string(logsafe.JSON(b)))
		fmt.Fprintln(e.Stderr, "dry run: nothing was created")
		return ExitOK
	}
	t, err := mintVia(ctx, e, ui, cfg, bf.idTokenEnv)
	if err != nil {
		flagErrorsVia(e.Stderr, "mint", cfg.Broker, err)
		return ExitFail
	}
	filter := make([]string, len(t.CIDRs))
	for i, p := range t.CIDRs {
		filter[i] = p.String()
	}
	fmt.Fprintf(e.Stderr, "Minted token %s (id %s), valid until %s, usable from %s. Revoke it early with: %s\n",
		logsafe.String(t.Name), logsafe.String(t.ID), t.ExpiresOn.Format(time.RFC3339), orAny(strings.Join(filter, ",")), revokeCommand(cfg.Broker, t.ID))
	if *format == "text" {
		fmt.Fprintln(e.Stdout, t.Secret)
		return ExitOK
	}
	out := map[string]any{
		"token": t.Secret, "id": t.ID, "name": t.Name, "owner": t.Owner,
		"expires_on": t.ExpiresOn.Format(time.RFC3339), "ip_filter": filter,
	}
	if t.R2Endpoint != "" {
		out["r2_access_key_id"] = t.ID
		out["r2_secret_access_key"] = t.S3Secret()
		out["r2_endpoint"] = t.R2Endpoint
	}
	b, _ := json.MarshalIndent(out, "", "  ")
	fmt.Fprintln(e.Stdout, string(logsafe.JSON(b)))
	return ExitOK
}

// plural is n and noun, with an s unless n is 1: "1 rule", "3 rules", "0 tokens".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return strconv.Itoa(n) + " " + noun + "s"
}

func orAny(s string) string {
	if s == "" {
		return "any address"
	}
	return s
}

// terminalContext names a token minted from a terminal: the repository when run inside a
// workflow step, else "local"; a random run id keeps names unique.
func terminalContext(e Env) config.Context {
	var b [3]byte
	_, _ = rand.Read(b[:])
	return config.Context{
		Repository: getenv(e, "GITHUB_REPOSITORY"),
		RunID:      strconv.FormatInt(time.Now().Unix(), 10),
		RunAttempt: hex.EncodeToString(b[:]),
		Job:        "cli",
	}
}

const revokeUsage = `Usage: cfmint revoke [flags] TOKEN_ID

Revokes (deletes) a token by id with the bootstrap token. A token that is already
gone counts as revoked.

With --broker URL it revokes a token a cfmint broker minted, through that broker,
with a fresh ID token of the same run: the broker takes each ID token once, so a
GitLab job names a second id_tokens: entry with --id-token-env.

Exit codes: 0 revoked or already gone, 1 Cloudflare refused, 2 bad flags.
`

func revokeCmd(ctx context.Context, e Env, args []string) int {
	fs := newFlagSet(e, "revoke", revokeUsage)
	var c common
	c.register(fs, e)
	bf := registerBroker(fs, "revoke")
	if code, ok := parse(fs, args); !ok {
		return code
	}
	if fs.NArg() != 1 {
		fmt.Fprintln(e.Stderr, "cfmint revoke: give exactly one TOKEN_ID; see cfmint revoke --help")
		return ExitUsage
	}
	in := c.inputs(e)
	in.TokenID = fs.Arg(0)
	bf.apply(in)
	cfg, err := config.Validate(in, terminalContext(e))
	if err = errors.Join(bf.check(), err); err != nil {
		flagErrors(e.Stderr, "revoke", err)
		return ExitUsage
	}
	warnBase(e, cfg)
	ctx, cancel := withTimeout(ctx, cfg)
	defer cancel()
	if cfg.Broker != "" {
		return brokerRevoke(ctx, e, stderrUI{w: e.Stderr, verbose: c.verbose}, cfg, bf.idTokenEnv)
	}
	gone, err := e.engine(stderrUI{w: e.Stderr, verbose: c.verbose}, cfg).Revoke(ctx, cfg.Owner, cfg.AccountID, cfg.TokenID)
	if err != nil {
		fmt.Fprintf(e.Stderr, "cfmint revoke: %v\n", err)
		return ExitFail
	}
	if gone {
		fmt.Fprintf(e.Stderr, "Token %s was already gone.\n", cfg.TokenID)
	} else {
		fmt.Fprintf(e.Stderr, "Revoked token %s.\n", cfg.TokenID)
	}
	return ExitOK
}

const permissionsUsage = `Usage: cfmint permissions [flags] [SEARCH]

Lists the permission groups a token of the owner may be granted, with their scopes,
as Cloudflare's API names them; SEARCH keeps those whose name contains it.

Exit codes: 0 listed, 1 Cloudflare refused, 2 bad flags.
`

func permissionsCmd(ctx context.Context, e Env, args []string) int {
	fs := newFlagSet(e, "permissions", permissionsUsage)
	var c common
	c.register(fs, e)
	// --owner was this command's name for --token-owner; scripts may still pass it.
	fs.StringVar(&c.owner, "owner", "account", hiddenFlag+"the old name of --token-owner")
	if code, ok := parse(fs, args); !ok {
		return code
	}
	if fs.NArg() > 1 {
		fmt.Fprintln(e.Stderr, "cfmint permissions: give at most one SEARCH word; quote a phrase")
		return ExitUsage
	}
	cfg, err := config.ValidateAccess(c.inputs(e))
	if err != nil {
		flagErrors(e.Stderr, "permissions", err)
		return ExitUsage
	}
	warnBase(e, cfg)
	ctx, cancel := withTimeout(ctx, cfg)
	defer cancel()
	groups, _, err := e.engine(stderrUI{w: e.Stderr, verbose: c.verbose}, cfg).Tokens.PermissionGroups(ctx, cfg.Owner, cfg.AccountID)
	if err != nil {
		fmt.Fprintf(e.Stderr, "cfmint permissions: %v\n", err)
		return ExitFail
	}
	search := strings.ToLower(fs.Arg(0))
	sort.Slice(groups, func(i, j int) bool { return groups[i].Name < groups[j].Name })
	n := 0
	for _, g := range groups {
		if search != "" && !strings.Contains(strings.ToLower(g.Name), search) {
			continue
		}
		var scopes []string
		for _, s := range g.Scopes {
			scopes = append(scopes, strings.TrimPrefix(strings.TrimPrefix(s, "com.cloudflare.api."), "com.cloudflare.edge."))
		}
		fmt.Fprintf(e.Stdout, "%-55s %s\n", logsafe.String(g.Name), logsafe.String(strings.Join(scopes, ",")))
		n++
	}
	fmt.Fprintf(e.Stderr, "%d groups\n", n)
	return ExitOK
}

const sweepUsage = `Usage: cfmint sweep [flags]

Deletes the tokens cfmint minted that were left behind (a runner that died before
its post phase, revoke: false): expired ones, and with --older-than, old ones.
Expired tokens count against the token quota until deleted. It recognises cfmint's
tokens by the names cfmint gives them, and never touches any other token.

Exit codes: 0 swept (or nothing to sweep), 1 Cloudflare refused, 2 bad flags.
`

func sweepCmd(ctx context.Context, e Env, args []string) int {
	fs := newFlagSet(e, "sweep", sweepUsage)
	var c common
	c.register(fs, e)
	repo := fs.String("repo", "", "whose tokens: owner/repo, or * for every repository (default $GITHUB_REPOSITORY, else local)")
	older := fs.String("older-than", "", "also delete live tokens issued longer ago than this")
	dry := fs.Bool("dry-run", false, "list what would be deleted, and delete nothing")
	if code, ok := parse(fs, args); !ok {
		return code
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(e.Stderr, "cfmint sweep: unexpected argument %s\n", logsafe.Quote(fs.Arg(0)))
		return ExitUsage
	}
	in := c.inputs(e)
	in.Sweep, in.SweepOlderThan, in.SweepRepo = "true", *older, *repo
	rc := terminalContext(e)
	cfg, err := config.Validate(in, rc)
	if err != nil {
		flagErrors(e.Stderr, "sweep", err)
		return ExitUsage
	}
	warnBase(e, cfg)
	if cfg.SweepRepo == "" {
		cfg.SweepRepo = "local"
	}
	ctx, cancel := withTimeout(ctx, cfg)
	defer cancel()
	eng := e.engine(stderrUI{w: e.Stderr, verbose: c.verbose}, cfg)
	swept, err := eng.Sweep(ctx, mint.SweepOptions{Owner: cfg.Owner, AccountID: cfg.AccountID, Repo: cfg.SweepRepo, OlderThan: cfg.SweepOlderThan, DryRun: *dry})
	verb := "deleted"
	if *dry {
		verb = "would delete"
	}
	for _, s := range swept {
		result := verb
		if s.Err != nil {
			result = "FAILED: " + s.Err.Error()
		}
		fmt.Fprintf(e.Stdout, "%s  %s  %s  (%s)\n", s.ID, logsafe.Quote(s.Name), result, s.Reason)
	}
	failed := 0
	for _, s := range swept {
		if s.Err != nil {
			failed++
		}
	}
	switch {
	case *dry:
		fmt.Fprintf(e.Stderr, "%s would be deleted (dry run: nothing was)\n", plural(len(swept), "token"))
	case failed > 0:
		fmt.Fprintf(e.Stderr, "%s deleted, %d could not be\n", plural(len(swept)-failed, "token"), failed)
	default:
		fmt.Fprintf(e.Stderr, "%s deleted\n", plural(len(swept), "token"))
	}
	if err != nil {
		fmt.Fprintf(e.Stderr, "cfmint sweep: %v\n", err)
		return ExitFail
	}
	return ExitOK
}
