package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/cfmint/cfmint/internal/broker"
	"github.com/cfmint/cfmint/internal/cfgroups"
	"github.com/cfmint/cfmint/internal/cftoken"
	"github.com/cfmint/cfmint/internal/config"
	"github.com/cfmint/cfmint/internal/logsafe"
	"github.com/cfmint/cfmint/internal/mint"
	"github.com/cfmint/cfmint/internal/trust"
)

const policyUsage = `Usage: cfmint policy check FILE
       cfmint policy test FILE --claims CLAIMS.json [--request REQUEST.json] [--caller IP]

check validates a broker's trust policy and reports every problem at once.

test decides, as the broker would, a request (a JSON object keyed by the action's
inputs, as a workflow step sends it) from a job whose ID token carries CLAIMS (a
JSON object of strings, such as a decoded GitHub ID token), and says what the
broker would mint or why it would refuse.

Both resolve permission names as the broker does: against Cloudflare's list when
$CLOUDFLARE_BOOTSTRAP_TOKEN is set (test then also looks the zones up), else
against the list of Cloudflare's permission groups compiled into cfmint, whose
date they print (zones are then taken as written: the broker refuses a zone that
does not exist in the rule's account).

Exit codes:
  0  valid (check), allowed (test)
  1  invalid (check), denied (test)
  2  bad command line
  3  could not check: Cloudflare did not answer, or refused the bootstrap token
`

// ExitUnchecked is `cfmint policy`'s exit code when it could not decide: Cloudflare did not
// answer, or refused the bootstrap token's lookups.
const ExitUnchecked = 3

func policyCmd(ctx context.Context, e Env, args []string) int {
	if len(args) == 0 || (args[0] != "check" && args[0] != "test") {
		fmt.Fprint(e.Stderr, policyUsage)
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "help") {
			return ExitOK
		}
		return ExitUsage
	}
	sub := args[0]
	fs := newFlagSet(e, "policy "+sub, policyUsage)
	claimsFile := fs.String("claims", "", "the ID token's claims, a JSON object (test)")
	requestFile := fs.String("request", "", "the request, a JSON object keyed by the action's inputs (test; default: preset workers-deploy)")
	callerFlag := fs.String("caller", "192.0.2.1", "the address the request would come from (test)")
	// The file comes first, flags after it.
	if len(args) < 2 || strings.HasPrefix(args[1], "-") {
		fmt.Fprintf(e.Stderr, "cfmint policy %s: name the policy FILE first\n", sub)
		return ExitUsage
	}
	file := args[1]
	if code, ok := parse(fs, args[2:]); !ok {
		return code
	}
	data, code := readPolicy(e, sub, file)
	if data == nil {
		return code
	}
	look, source, code := policyLookup(e, sub)
	if look == nil {
		return code
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if sub == "check" {
		// Every problem at once: those of the file's form, and those only Cloudflare's list of
		// permission groups shows.
		p, err := broker.CheckPolicyFile(ctx, data, look)
		if err != nil {
			fmt.Fprintf(e.Stderr, "cfmint policy check: %s:\n%v\n", file, err)
			if broker.Unchecked(err) {
				return ExitUnchecked
			}
			return ExitFail
		}
		issuers := "issuer"
		if len(p.Issuers()) != 1 {
			issuers += "s"
		}
		fmt.Fprintf(e.Stdout, "%s: valid: %s, audience %s, %s %s\n", file, plural(len(p.Rules()), "rule"), p.Audience(), issuers, strings.Join(p.Issuers(), ", "))
		fmt.Fprintf(e.Stdout, "Permission names were resolved against %s.\n", source)
		// Warnings leave the policy valid: they name rules that lean on names or broad patterns
		// beside their id pins.
		for _, w := range p.Warnings() {
			fmt.Fprintf(e.Stderr, "warning: %s\n", w)
		}
		return ExitOK
	}
	p, err := trust.Parse(data)
	if err != nil {
		fmt.Fprintf(e.Stderr, "cfmint policy test: %s:\n%v\n", file, err)
		return ExitFail
	}
	return policyTest(ctx, e, p, look, source, *claimsFile, *requestFile, *callerFlag, fs.NArg() > 0)
}

// policyLookup is where `cfmint policy` resolves names: Cloudflare with a bootstrap token, else
// the snapshot compiled in; and a phrase naming it. A nil Lookup comes with the exit code.
func policyLookup(e Env, sub string) (broker.Lookup, string, int) {
	base, err := config.ParseAPIBase(getenv(e, "CLOUDFLARE_API_BASE_URL"))
	if err != nil {
		fmt.Fprintf(e.Stderr, "cfmint policy %s: $CLOUDFLARE_API_BASE_URL: %v\n", sub, err)
		return nil, "", ExitUsage
	}
	token := strings.TrimSpace(getenv(e, "CLOUDFLARE_BOOTSTRAP_TOKEN"))
	if token == "" {
		return broker.SnapshotLookup(), "the snapshot of Cloudflare's permission groups of " + cfgroups.Date + " compiled into cfmint; set $CLOUDFLARE_BOOTSTRAP_TOKEN to resolve them against Cloudflare's list, as the broker does", ExitOK
	}
	return broker.LiveLookup(cftoken.New(token, cftoken.Options{BaseURL: base, HTTPClient: e.HTTPClient})), "Cloudflare's list, with the bootstrap token", ExitOK
}

// policyTest is `cfmint policy test`: broker.Decide, as an exchange calls it, on a request from
// files.
func policyTest(ctx context.Context, e Env, p *trust.Policy, look broker.Lookup, source, claimsFile, requestFile, callerFlag string, extra bool) int {
	if claimsFile == "" || extra {
		fmt.Fprintln(e.Stderr, "cfmint policy test: give --claims CLAIMS.json (and optionally --request REQUEST.json)")
		return ExitUsage
	}
	var raw map[string]any
	if err := readJSON(claimsFile, &raw); err != nil {
		fmt.Fprintf(e.Stderr, "cfmint policy test: --claims: %v\n", err)
		return ExitUsage
	}
	claims := trust.ClaimsFrom(raw)
	body := map[string]string{"preset": "workers-deploy"}
	if requestFile != "" {
		body = nil
		if err := readJSON(requestFile, &body); err != nil {
			fmt.Fprintf(e.Stderr, "cfmint policy test: --request: %v (want a JSON object of strings)\n", err)
			return ExitUsage
		}
	}
	caller, err := netip.ParseAddr(callerFlag)
	if err != nil {
		fmt.Fprintf(e.Stderr, "cfmint policy test: --caller: %q is not an IP address\n", callerFlag)
		return ExitUsage
	}
	iss := claims["iss"]
	if rules := p.Match(iss, claims); len(rules) > 0 {
		var names []string
		for _, r := range rules {
			names = append(names, r.Name())
		}
		fmt.Fprintf(e.Stdout, "matching rules, in order: %s\n", strings.Join(names, ", "))
	}
	fmt.Fprintf(e.Stdout, "Permission names were resolved against %s.\n", source)
	plan, err := broker.Decide(ctx, p, look, broker.Request{Issuer: iss, Claims: claims, Body: body, Caller: caller})
	switch {
	case broker.Denied(err):
		fmt.Fprintf(e.Stdout, "denied: %v\n", err)
		return ExitFail
	case err != nil:
		fmt.Fprintf(e.Stderr, "cfmint policy test: could not decide: %v\n", err)
		return ExitUnchecked
	}
	d := plan.Decision
	a := mint.Assemble(d.Owner, d.AccountID, "(name)", d.Policies, d.CIDRs, plan.Ask.Zones, plan.Ask.Buckets, d.TTL, time.Now())
	fmt.Fprintf(e.Stdout, "allowed by rule %s: %s token of account %s for %s, usable from %s:\n", d.Rule, article(string(d.Owner)+"-owned"), d.AccountID, mint.Human(d.TTL), usableFrom(d.CIDRs, caller))
	for _, g := range a.Grants() {
		var where []string
		for _, r := range g.Resources {
			where = append(where, strings.Join(strings.Fields(r.Kind+" "+r.Name+" "+r.ID), " "))
		}
		fmt.Fprintf(e.Stdout, "  %s on %s\n", g.Permission, strings.Join(where, ", "))
	}
	return ExitOK
}

// readPolicy reads the policy FILE, naming it as the user gave it: an argument, not serve's
// --policy. Nil comes with the exit code.
func readPolicy(e Env, sub, file string) ([]byte, int) {
	b, err := os.ReadFile(file)
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		fmt.Fprintf(e.Stderr, "cfmint policy %s: cannot read the policy FILE %s: %v\n", sub, logsafe.Quote(file), err)
		return nil, ExitUsage
	}
	if b == nil {
		b = []byte{}
	}
	return b, ExitOK
}

// article puts "a" or "an" before a word: "an account-owned", "a user-owned".
func article(word string) string {
	if word != "" && strings.ContainsRune("aeiouAEIOU", rune(word[0])) {
		return "an " + word
	}
	return "a " + word
}

// usableFrom says where a decided token would work, and where an address comes from: the
// broker pins a token to the address the request comes from, which --caller stands for.
func usableFrom(cidrs []netip.Prefix, caller netip.Addr) string {
	list := mint.CIDRList(cidrs)
	switch {
	case list == "":
		return "any address"
	case len(cidrs) == 1 && cidrs[0].IsSingleIP() && cidrs[0].Addr() == caller:
		return list + " (the --caller address: the broker pins the token to the address the request comes from)"
	}
	return list
}

func readJSON(file string, v any) error {
	b, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}
