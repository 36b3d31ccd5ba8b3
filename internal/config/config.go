// Package config turns the action's inputs into a validated Config; every error names the input as the user typed it.
package config

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/sethvargo/go-envconfig"

	"github.com/cfmint/cfmint/internal/cftoken"
	"github.com/cfmint/cfmint/internal/field"
	"github.com/cfmint/cfmint/internal/logsafe"
	"github.com/cfmint/cfmint/internal/mint"
	"github.com/cfmint/cfmint/internal/policy"
)

// Bounds of the ttl input. A token that outlives its job is the thing cfmint exists to prevent,
// and one that dies within a minute cannot finish a deploy.
const (
	MinTTL     = time.Minute
	MaxTTL     = 6 * time.Hour
	DefaultTTL = 15 * time.Minute
)

// Inputs are the action's inputs as the runner hands them over: raw strings.
type Inputs struct {
	BootstrapToken string `env:"BOOTSTRAP_TOKEN"`
	AccountID      string `env:"ACCOUNT_ID"`
	TokenOwner     string `env:"TOKEN_OWNER"`
	Preset         string `env:"PRESET"`
	Permissions    string `env:"PERMISSIONS"`
	Zones          string `env:"ZONES"`
	TTL            string `env:"TTL"`
	IPFilter       string `env:"IP_FILTER"`
	Name           string `env:"NAME"`
	ExportEnv      string `env:"EXPORT_ENV"`
	Revoke         string `env:"REVOKE"`
	R2Buckets      string `env:"R2_BUCKETS"`
	ExportR2       string `env:"EXPORT_R2"`
	DryRun         string `env:"DRY_RUN"`
	TokenID        string `env:"TOKEN_ID"`
	Sweep          string `env:"SWEEP"`
	SweepOlderThan string `env:"SWEEP_OLDER_THAN"`
	SweepRepo      string `env:"SWEEP_REPOSITORY"`
	Timeout        string `env:"TIMEOUT"`
	APIBaseURL     string `env:"API_BASE_URL"`
	// AllowLastingAccess lets a token carry groups that can create access outliving it
	// (policy.LastingGroups).
	AllowLastingAccess string `env:"ALLOW_LASTING_ACCESS"`
	Broker             string `env:"BROKER"`
	Audience           string `env:"AUDIENCE"`

	// ExportEnvSet tells an export-env that is set but empty (export nothing) from one that is
	// not set at all (a terminal run: the default applies); go-envconfig sees both as empty.
	ExportEnvSet bool
}

// InputLookuper maps go-envconfig's keys onto the runner's INPUT_* names. go-envconfig rejects
// '-' in a key, and the runner keeps the hyphens of kebab-case inputs (INPUT_BOOTSTRAP-TOKEN).
func InputLookuper(getenv func(string) (string, bool)) envconfig.Lookuper {
	return envconfig.LookuperFunc(func(key string) (string, bool) {
		return getenv("INPUT_" + strings.ReplaceAll(key, "_", "-"))
	})
}

// ReadInputs reads the inputs from the runner's INPUT_* variables.
func ReadInputs(ctx context.Context, getenv func(string) (string, bool)) (*Inputs, error) {
	var in Inputs
	if err := envconfig.ProcessWith(ctx, &envconfig.Config{Target: &in, Lookuper: InputLookuper(getenv)}); err != nil {
		return nil, fmt.Errorf("failed to read inputs: %w", err)
	}
	_, in.ExportEnvSet = getenv("INPUT_EXPORT-ENV")
	return &in, nil
}

// IPFilter is the parsed ip-filter input.
type IPFilter struct {
	Runner bool           // add the runner's own address(es)
	None   bool           // no filter at all
	CIDRs  []netip.Prefix // fixed ranges, canonical
}

// Zones is the parsed zones input.
type Zones struct {
	All   bool     // "*": every zone of the account
	Names []string // zone names, lower case
	IDs   []string // zone ids
}

// Mode is what a run does.
type Mode int

// The modes: mint a token (the default), revoke one by id (token-id), or sweep leftovers (sweep).
const (
	ModeMint Mode = iota
	ModeRevoke
	ModeSweep
)

// Bucket is one R2 bucket of the r2-buckets input.
// Its jurisdiction is default, eu or fedramp.
type Bucket = policy.Bucket

// Config is the validated request of one run.
type Config struct {
	Mode           Mode
	BootstrapToken string // secret: never print, wrap or store
	AccountID      string
	Owner          cftoken.Owner
	Preset         string
	Permissions    []string // permission lines as written, split on newlines; commas are split later, knowing the names
	Zones          Zones
	TTL            time.Duration
	IPFilter       IPFilter
	Name           string
	ExportEnv      string
	Revoke         bool
	Buckets        []Bucket
	ExportR2       bool
	DryRun         bool
	Timeout        time.Duration
	// APIBase is where every call to Cloudflare goes, with the bootstrap token: the api-base-url
	// input, which only the workflow file sets (never an environment variable an earlier step
	// could have written), checked by ParseAPIBase.
	APIBase string
	// AllowLastingAccess lets the token carry groups that can create credentials or identities
	// outliving it (policy.LastingGroups); each one granted deserves a warning and a flag in the
	// summary.
	AllowLastingAccess bool
	// Broker is the broker's URL (no trailing slash) when tokens come from a broker instead of a
	// bootstrap token; Audience is the audience its ID tokens are asked for.
	Broker, Audience string
	// BrokerRequest is the mint request for a broker: the inputs of RequestKeys as written.
	BrokerRequest map[string]string

	TokenID        string        // revoke mode: the token to revoke
	SweepOlderThan time.Duration // sweep mode: also delete live tokens older than this (0: only expired ones)
	SweepRepo      string        // sweep mode: whose tokens ("*": every repository's)
}

// Context is what the runner says about the run, used to name the token.
type Context = mint.RunContext

var (
	bucketName = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$`)
	envName    = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	zoneName   = regexp.MustCompile(`^(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z0-9-]{2,63}$`)
	reservedEv = []string{"GITHUB_", "RUNNER_", "ACTIONS_"}
	blockedEv  = map[string]bool{"PATH": true, "HOME": true, "NODE_OPTIONS": true, "LD_PRELOAD": true, "LD_LIBRARY_PATH": true, "CLOUDFLARE_ACCOUNT_ID": true, "CLOUDFLARE_API_BASE_URL": true}
)

func val(s string) string { return strings.TrimSpace(s) }

// inputError is one bad input: it names the input as the user writes it.
func inputError(input, format string, args ...any) error {
	return field.Errorf(input, "%s", fmt.Sprintf(format, args...))
}

// ValidateAccess checks only what calling Cloudflare needs (bootstrap-token, token-owner,
// account-id, timeout, api-base-url): for commands that mint nothing, such as listing
// permission groups.
func ValidateAccess(in *Inputs) (*Config, error) {
	c := &Config{}
	if errs := validateAccess(in, c); len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return c, nil
}

func validateAccess(in *Inputs, c *Config) []error {
	var errs []error
	tok := val(in.BootstrapToken)
	switch {
	case tok == "" && c.Broker != "":
	case tok == "":
		errs = append(errs, inputError("bootstrap-token", "is empty; set it to a secret holding a Cloudflare token that may create tokens (GitHub does not give secrets to workflows run from forks, so a pull request from a fork sees it empty), or set broker to mint through a cfmint broker instead"))
	case strings.IndexFunc(tok, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) >= 0:
		// The value is secret, so the error says what is wrong without showing it.
		errs = append(errs, inputError("bootstrap-token", "contains white space or control characters; paste the token alone, on one line"))
	default:
		c.BootstrapToken = tok
	}

	owner := val(in.TokenOwner)
	if o, ok := cftoken.ParseOwner(owner); ok {
		c.Owner = o
	} else {
		errs = append(errs, inputError("token-owner", "%s is not an owner; use account or user", quote(owner)))
	}

	acct := val(in.AccountID)
	if acct != "" {
		if !cftoken.ValidID(strings.ToLower(acct)) {
			errs = append(errs, inputError("account-id", "%s is not an account id; it is 32 hex characters, shown on the account's overview page in the dashboard", quote(acct)))
		} else {
			c.AccountID = strings.ToLower(acct)
		}
	} else if c.Owner == cftoken.OwnerAccount && c.Broker == "" {
		errs = append(errs, inputError("account-id", "is empty; an account-owned token (token-owner: account) needs the account id (32 hex characters)"))
	}
	if d, err := ParseTimeout(in.Timeout); err != nil {
		errs = append(errs, err)
	} else {
		c.Timeout = d
	}
	if base, err := ParseAPIBase(in.APIBaseURL); err != nil {
		errs = append(errs, inputError("api-base-url", "%v", err))
	} else {
		c.APIBase = base
	}
	return errs
}

// Validate checks every input and reports every problem at once (errors.Join), each naming its
// input, the bad value (never the secret) and what is allowed.
func Validate(in *Inputs, rc Context) (*Config, error) {
	c := &Config{}
	errs := validateBroker(in, c)
	errs = append(errs, validateAccess(in, c)...)

	preset := val(in.Preset)
	if preset != "" {
		if _, ok := policy.Presets[strings.ToLower(preset)]; !ok {
			errs = append(errs, inputError("preset", "%s is not a preset; use one of %s", quote(preset), strings.Join(policy.PresetNames(), ", ")))
		} else {
			c.Preset = strings.ToLower(preset)
		}
	}

	perms := val(in.Permissions)
	for _, line := range strings.Split(perms, "\n") {
		if line = strings.TrimSpace(line); line != "" {
			if strings.IndexFunc(line, unicode.IsControl) >= 0 {
				errs = append(errs, inputError("permissions", "%s contains control characters", quote(line)))
				continue
			}
			c.Permissions = append(c.Permissions, line)
		}
	}
	c.TokenID = strings.ToLower(val(in.TokenID))
	if c.TokenID != "" && !cftoken.ValidID(c.TokenID) {
		errs = append(errs, inputError("token-id", "%s is not a token id; it is 32 hex characters (the token-id output of the step that minted it)", quote(val(in.TokenID))))
	}
	sweep, err := parseBool("sweep", in.Sweep, false)
	errs = appendErr(errs, err)
	switch {
	case c.TokenID != "" && sweep:
		errs = append(errs, inputError("token-id", "cannot be combined with sweep: true; use one step to revoke a token and another to sweep"))
	case c.TokenID != "":
		c.Mode = ModeRevoke
	case sweep:
		c.Mode = ModeSweep
	}
	if c.Mode != ModeMint && (preset != "" || perms != "") {
		what := "token-id"
		if c.Mode == ModeSweep {
			what = "sweep"
		}
		errs = append(errs, inputError(what, "revokes or sweeps and mints nothing, so it cannot be combined with preset or permissions; mint in another step"))
	}
	if c.Mode == ModeMint && preset == "" && perms == "" {
		errs = append(errs, inputError("preset", "no permissions asked for; set preset (one of %s) or permissions (for example \"DNS Write\")", strings.Join(policy.PresetNames(), ", ")))
	}

	if older := val(in.SweepOlderThan); older != "" {
		d, err := time.ParseDuration(older)
		if err != nil || d < time.Minute {
			errs = append(errs, inputError("sweep-older-than", "%s is not a duration of at least 1m; write one such as 6h or 24h (empty: only expired tokens)", quote(older)))
		}
		c.SweepOlderThan = d
	}
	c.SweepRepo = rc.Repository
	if r := val(in.SweepRepo); r != "" {
		if r != "*" && !mint.PlainRepo(r) {
			errs = append(errs, inputError("sweep-repository", "%s is not owner/repo or *", quote(r)))
		}
		c.SweepRepo = r
	}

	buckets, berrs := ParseBuckets(val(in.R2Buckets))
	c.Buckets = buckets
	errs = append(errs, berrs...)
	for _, b := range buckets {
		if b.Jurisdiction != buckets[0].Jurisdiction {
			errs = append(errs, inputError("r2-buckets", "names buckets in the %s and %s jurisdictions; a token's S3 endpoint serves one jurisdiction, so mint one token per jurisdiction", buckets[0].Jurisdiction, b.Jurisdiction))
			break
		}
	}
	c.ExportR2, err = parseBool("export-r2", in.ExportR2, false)
	errs = appendErr(errs, err)
	c.DryRun, err = parseBool("dry-run", in.DryRun, false)
	errs = appendErr(errs, err)
	if c.DryRun && c.Mode == ModeRevoke {
		errs = append(errs, inputError("dry-run", "cannot be combined with token-id: a revoke has nothing to preview; leave dry-run out to revoke"))
	}

	zones := val(in.Zones)
	z, zerrs := ParseZones(zones)
	c.Zones = z
	errs = append(errs, zerrs...)

	ttl := val(in.TTL)
	if d, err := ParseTTL(ttl); err != nil {
		errs = append(errs, err)
	} else {
		c.TTL = d
	}

	ipf := val(in.IPFilter)
	if f, err := ParseIPFilter(ipf); err != nil {
		errs = append(errs, err)
	} else {
		c.IPFilter = f
	}

	if ev := val(in.ExportEnv); !in.ExportEnvSet && ev == "" {
		c.ExportEnv = "CLOUDFLARE_API_TOKEN"
	} else if err := checkExportEnv(ev); err != nil {
		errs = append(errs, err)
	} else {
		c.ExportEnv = ev
	}

	c.Revoke, err = parseBool("revoke", in.Revoke, true)
	errs = appendErr(errs, err)
	c.AllowLastingAccess, err = parseBool("allow-lasting-access", in.AllowLastingAccess, false)
	errs = appendErr(errs, err)

	name := val(in.Name)
	if name != "" {
		if n, err := ExpandName(name, rc, purpose(c)); err != nil {
			errs = append(errs, err)
		} else {
			c.Name = n
		}
	} else {
		c.Name = mint.DefaultName(rc, purpose(c))
	}
	errs = append(errs, brokerModes(in, c)...)

	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return c, nil
}

func purpose(c *Config) string {
	switch {
	case c.Preset != "" && len(c.Permissions) > 0:
		return c.Preset + "+custom"
	case c.Preset != "":
		return c.Preset
	default:
		return "custom"
	}
}

// DefaultTimeout bounds a phase when the timeout input is empty.
const DefaultTimeout = 2 * time.Minute

// ParseTimeout parses the timeout input: a duration from 10s to 30m; empty means DefaultTimeout.
func ParseTimeout(s string) (time.Duration, error) {
	to := val(s)
	if to == "" {
		return DefaultTimeout, nil
	}
	d, err := time.ParseDuration(to)
	if err != nil || d < 10*time.Second || d > 30*time.Minute {
		return 0, inputError("timeout", "%s is not a duration from 10s to 30m; write one such as 2m", quote(to))
	}
	return d, nil
}

func appendErr(errs []error, err error) []error {
	if err != nil {
		return append(errs, err)
	}
	return errs
}

// parseBool reads a true/false input; empty gives def.
func parseBool(input, s string, def bool) (bool, error) {
	switch strings.ToLower(val(s)) {
	case "":
		return def, nil
	case "true":
		return true, nil
	case "false":
		return false, nil
	}
	return def, inputError(input, "%s is not a boolean; use true or false", quote(val(s)))
}

// Jurisdictions of R2 buckets.
var Jurisdictions = []string{"default", "eu", "fedramp"}

// ParseBuckets parses r2-buckets: bucket names, each optionally prefixed by a jurisdiction
// (eu:assets).
func ParseBuckets(s string) ([]Bucket, []error) {
	var out []Bucket
	var errs []error
	seen := map[Bucket]bool{}
	for _, it := range splitList(s) {
		b := Bucket{Jurisdiction: "default", Name: it}
		if j, n, ok := strings.Cut(it, ":"); ok {
			b = Bucket{Jurisdiction: strings.ToLower(j), Name: n}
			if !slices.Contains(Jurisdictions, b.Jurisdiction) {
				errs = append(errs, inputError("r2-buckets", "%s has jurisdiction %s; use %s, or no prefix for the default", quote(it), quote(j), strings.Join(Jurisdictions, ", ")))
				continue
			}
		}
		if !bucketName.MatchString(b.Name) {
			errs = append(errs, inputError("r2-buckets", "%s is not a bucket name: 3 to 63 lower-case letters, digits and hyphens, starting and ending with a letter or digit", quote(b.Name)))
			continue
		}
		if !seen[b] {
			seen[b] = true
			out = append(out, b)
		}
	}
	return out, errs
}

// ParseTTL parses the ttl input: a Go duration from MinTTL to MaxTTL; empty means DefaultTTL.
func ParseTTL(s string) (time.Duration, error) {
	if s == "" {
		return DefaultTTL, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		if isDigits(s) {
			return 0, inputError("ttl", "%s has no unit; write a duration such as 15m (allowed: 1m to 6h)", quote(s))
		}
		return 0, inputError("ttl", "%s is not a duration; write one such as 15m, 90s or 1h30m (allowed: 1m to 6h)", quote(s))
	}
	if d < MinTTL || d > MaxTTL {
		return 0, inputError("ttl", "%s is outside the allowed range 1m to 6h", quote(s))
	}
	return d.Truncate(time.Second), nil
}

func isDigits(s string) bool {
	s = strings.TrimLeft(s, "+-")
	if s == "" {
		return false
	}
	for _, r := range s {
		if (r < '0' || r > '9') && r != '.' {
			return false
		}
	}
	return true
}

// splitList splits a list input on commas, newlines and white space.
func splitList(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool { return r == ',' || unicode.IsSpace(r) })
}

// ParseIPFilter parses the ip-filter input: runner, none, or CIDRs (bare addresses become /32 or
// /128); runner may be combined with CIDRs. Empty means runner: the safe default.
func ParseIPFilter(s string) (IPFilter, error) {
	var f IPFilter
	items := splitList(s)
	if len(items) == 0 {
		return IPFilter{Runner: true}, nil
	}
	var bad []string
	seen := map[netip.Prefix]bool{}
	for _, it := range items {
		switch strings.ToLower(it) {
		case "runner", "caller":
			// caller is a broker's word for it: the address the request came from.
			f.Runner = true
			continue
		case "none":
			f.None = true
			continue
		}
		p, err := ParseCIDR(it)
		if err != nil {
			bad = append(bad, err.Error())
			continue
		}
		if !seen[p] {
			seen[p] = true
			f.CIDRs = append(f.CIDRs, p)
		}
	}
	if len(bad) > 0 {
		return IPFilter{}, inputError("ip-filter", "%s; allowed: runner, none, or CIDRs such as 198.51.100.0/24 or 2001:db8::/48", strings.Join(bad, "; "))
	}
	for _, p := range f.CIDRs {
		if p.Bits() == 0 {
			return IPFilter{}, inputError("ip-filter", "%s matches every address; write none if an unfiltered token is really meant", p)
		}
	}
	if f.None && (f.Runner || len(f.CIDRs) > 0) {
		return IPFilter{}, inputError("ip-filter", "none cannot be combined with runner or CIDRs; write none alone for an unfiltered token")
	}
	return f, nil
}

// ParseCIDR parses one CIDR or bare address strictly: host bits must be zero, so that what the
// user wrote is exactly the range Cloudflare will apply.
func ParseCIDR(s string) (netip.Prefix, error) {
	if !strings.Contains(s, "/") {
		a, err := netip.ParseAddr(s)
		if err != nil || a.Zone() != "" {
			return netip.Prefix{}, fmt.Errorf("%s is not an IP address or CIDR", quote(s))
		}
		a = a.Unmap()
		return netip.PrefixFrom(a, a.BitLen()), nil
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%s is not a CIDR", quote(s))
	}
	if p.Addr().Is4In6() {
		return netip.Prefix{}, fmt.Errorf("%s is an IPv4-mapped IPv6 range; write the IPv4 form", quote(s))
	}
	if m := p.Masked(); m != p {
		return netip.Prefix{}, fmt.Errorf("%s has host bits set; write %s", quote(s), m)
	}
	return p, nil
}

// ParseZones parses the zones input: zone names, zone ids, or * for every zone of the account.
func ParseZones(s string) (Zones, []error) {
	var z Zones
	var errs []error
	for _, it := range splitList(s) {
		lit := strings.ToLower(strings.TrimSuffix(it, "."))
		switch {
		case lit == "*":
			z.All = true
		case slices.Contains(z.IDs, lit) || slices.Contains(z.Names, lit):
			// Named twice: one lookup, one resource.
		case cftoken.ValidID(lit):
			z.IDs = append(z.IDs, lit)
		case zoneName.MatchString(lit):
			z.Names = append(z.Names, lit)
		default:
			errs = append(errs, inputError("zones", "%s is neither a zone name (example.com) nor a zone id (32 hex characters)", quote(it)))
		}
	}
	if z.All && (len(z.Names) > 0 || len(z.IDs) > 0) {
		errs = append(errs, inputError("zones", "* (every zone of the account) cannot be combined with named zones"))
	}
	return z, errs
}

func checkExportEnv(ev string) error {
	if ev == "" {
		return nil // outputs only
	}
	if !envName.MatchString(ev) {
		return inputError("export-env", "%s is not a valid environment variable name; use letters, digits and _, not starting with a digit (or leave it empty to export nothing)", quote(ev))
	}
	up := strings.ToUpper(ev)
	for _, p := range reservedEv {
		if strings.HasPrefix(up, p) {
			return inputError("export-env", "%q is reserved by GitHub Actions (names starting %s); use another name such as CLOUDFLARE_API_TOKEN", ev, p)
		}
	}
	if blockedEv[up] {
		return inputError("export-env", "%q would override a variable the job or cfmint relies on; use another name such as CLOUDFLARE_API_TOKEN", ev)
	}
	return nil
}

// CheckName checks a token name given by the user. The name is printed in log lines, so what
// the runner could read as a workflow command ("::" or "##[", or a line break that starts a line
// of its own) is refused, and so is what a reader could not see: control and format characters.
func CheckName(name string) error {
	if !utf8.ValidString(name) || strings.IndexFunc(name, invisible) >= 0 {
		return inputError("name", "%s contains control characters or invisible ones; use printable characters only", quote(name))
	}
	for _, cmd := range []string{"::", "##["} {
		if strings.Contains(name, cmd) {
			return inputError("name", "%s holds %s, which the runner reads as the start of a workflow command; use another separator (a placeholder that is empty in this run can leave two ':' side by side)", quote(name), cmd)
		}
	}
	if strings.Contains(name, logsafe.FileCommandDelimiter) {
		return inputError("name", "contains the runner's file-command delimiter %s, which could inject outputs; choose another name", logsafe.FileCommandDelimiter)
	}
	if n := len([]rune(name)); n > mint.MaxNameLen {
		return inputError("name", "is %d characters long (with its placeholders filled in); Cloudflare allows at most %d", n, mint.MaxNameLen)
	}
	return nil
}

// invisible reports control characters, format characters (bidirectional overrides, zero-width
// ones) and line and paragraph separators.
func invisible(r rune) bool {
	return unicode.IsControl(r) || unicode.In(r, unicode.Cf, unicode.Zl, unicode.Zp)
}

// quote quotes a value back in an error: clipped, and so that the runner reads no workflow
// command in it when the error is printed as a plain line.
func quote(s string) string { return logsafe.Quote(logsafe.Clip(s, 80)) }
