package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/cfmint/cfmint/internal/action"
	"github.com/cfmint/cfmint/internal/broker"
	"github.com/cfmint/cfmint/internal/cftoken"
	"github.com/cfmint/cfmint/internal/config"
	"github.com/cfmint/cfmint/internal/mint"
	"github.com/cfmint/cfmint/internal/policy"
	"github.com/cfmint/cfmint/internal/trust"
)

const policyUsage = `Usage: cfmint policy check FILE
       cfmint policy test FILE --claims CLAIMS.json [--request REQUEST.json] [--caller IP]

check validates a broker's trust policy and reports every problem at once.

test says which rule matches an ID token's claims (a JSON object of strings, such
as a decoded GitHub ID token) and what the broker would mint for a request (a JSON
object keyed by the action's inputs, as a workflow step sends it). With a bootstrap
token ($CLOUDFLARE_BOOTSTRAP_TOKEN) it resolves permission names against
Cloudflare's list as the broker does; without one it says only which rules match.

Exit codes: 0 valid (check) or allowed (test), 1 denied or invalid, 2 bad command line.
`

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
	p, err := loadPolicy(file)
	if err != nil {
		fmt.Fprintf(e.Stderr, "cfmint policy %s: %v\n", sub, strings.Replace(err.Error(), "--policy ", "", 1))
		return ExitFail
	}
	token := strings.TrimSpace(getenv(e, "CLOUDFLARE_BOOTSTRAP_TOKEN"))
	base, err := config.ParseAPIBase(getenv(e, "CLOUDFLARE_API_BASE_URL"))
	if err != nil {
		fmt.Fprintf(e.Stderr, "cfmint policy %s: $CLOUDFLARE_API_BASE_URL: %v\n", sub, err)
		return ExitUsage
	}
	groupsOf := func(ctx context.Context, r *trust.Rule) ([]policy.Group, error) {
		c := cftoken.New(token, cftoken.Options{BaseURL: base, HTTPClient: e.HTTPClient})
		g, _, err := c.PermissionGroups(ctx, r.Owner(), r.AccountID())
		return g, err
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if sub == "check" {
		if token != "" {
			var errs []error
			seen := map[string]bool{}
			for _, r := range p.Rules() {
				k := string(r.Owner()) + r.AccountID()
				if seen[k] {
					continue
				}
				seen[k] = true
				g, err := groupsOf(ctx, r)
				if err != nil {
					errs = append(errs, err)
					continue
				}
				errs = append(errs, p.Check(g))
			}
			if err := errors.Join(errs...); err != nil {
				fmt.Fprintf(e.Stderr, "cfmint policy check: %s:\n%v\n", file, err)
				return ExitFail
			}
		}
		fmt.Fprintf(e.Stdout, "%s: valid: %d rules, audience %s, issuers %s\n", file, len(p.Rules()), p.Audience(), strings.Join(p.Issuers(), ", "))
		if token == "" {
			fmt.Fprintln(e.Stdout, "(permission names were not resolved: set $CLOUDFLARE_BOOTSTRAP_TOKEN to check them against Cloudflare's list)")
		}
		return ExitOK
	}

	if *claimsFile == "" || fs.NArg() > 0 {
		fmt.Fprintln(e.Stderr, "cfmint policy test: give --claims CLAIMS.json (and optionally --request REQUEST.json)")
		return ExitUsage
	}
	var raw map[string]any
	if err := readJSON(*claimsFile, &raw); err != nil {
		fmt.Fprintf(e.Stderr, "cfmint policy test: --claims: %v\n", err)
		return ExitUsage
	}
	claims := trust.ClaimsFrom(raw)
	iss := claims["iss"]
	body := map[string]string{"preset": "workers-deploy"}
	if *requestFile != "" {
		body = nil
		if err := readJSON(*requestFile, &body); err != nil {
			fmt.Fprintf(e.Stderr, "cfmint policy test: --request: %v (want a JSON object of strings)\n", err)
			return ExitUsage
		}
	}
	caller, err := netip.ParseAddr(*callerFlag)
	if err != nil {
		fmt.Fprintf(e.Stderr, "cfmint policy test: --caller: %q is not an IP address\n", *callerFlag)
		return ExitUsage
	}
	rules := p.Match(iss, claims)
	if len(rules) == 0 {
		_, err := p.Decide(iss, claims, trust.Ask{}, nil, caller)
		fmt.Fprintf(e.Stdout, "denied: %v\n", err)
		return ExitFail
	}
	var names []string
	for _, r := range rules {
		names = append(names, r.Name())
	}
	fmt.Fprintf(e.Stdout, "matching rules, in order: %s\n", strings.Join(names, ", "))
	if token == "" {
		fmt.Fprintln(e.Stdout, "(what they allow was not checked: set $CLOUDFLARE_BOOTSTRAP_TOKEN to resolve permission names as the broker does)")
		return ExitOK
	}
	// The broker's own parser: what test says is what the broker would do.
	ask, zones, _, err := broker.ParseRequest(body)
	if err != nil {
		fmt.Fprintf(e.Stdout, "bad request: %v\n", err)
		return ExitFail
	}
	eng := action.Engine(e.deps(), stderrUI{w: e.Stderr}, base, token)
	if len(zones.Names)+len(zones.IDs) > 0 {
		zs, err := eng.Zones(ctx, zones.Names, zones.IDs, rules[0].AccountID())
		if err != nil {
			fmt.Fprintf(e.Stdout, "bad request: %v\n", err)
			return ExitFail
		}
		ask.Zones, ask.ZonesAccount = zs, rules[0].AccountID()
	}
	lists := map[string][]policy.Group{}
	for _, r := range rules {
		k := string(r.Owner()) + "/" + r.AccountID()
		if _, ok := lists[k]; ok {
			continue
		}
		g, err := groupsOf(ctx, r)
		if err != nil {
			fmt.Fprintf(e.Stderr, "cfmint policy test: %v\n", err)
			return ExitFail
		}
		lists[k] = g
	}
	d, err := p.DecideWith(iss, claims, ask, func(r *trust.Rule) []policy.Group { return lists[string(r.Owner())+"/"+r.AccountID()] }, caller)
	if err != nil {
		fmt.Fprintf(e.Stdout, "denied: %v\n", err)
		return ExitFail
	}
	plan := mint.Assemble(d.Owner, d.AccountID, "(name)", d.Policies, d.CIDRs, ask.Zones, ask.Buckets, d.TTL, time.Now())
	fmt.Fprintf(e.Stdout, "allowed by rule %s: a %s-owned token of account %s for %s, usable from %s:\n", d.Rule, d.Owner, d.AccountID, mint.Human(d.TTL), orAny(mint.CIDRList(d.CIDRs)))
	for _, g := range plan.Grants() {
		var where []string
		for _, r := range g.Resources {
			where = append(where, strings.TrimSpace(r.Kind+" "+r.Name+" "+r.ID))
		}
		fmt.Fprintf(e.Stdout, "  %s on %s\n", g.Permission, strings.Join(where, ", "))
	}
	return ExitOK
}

func readJSON(file string, v any) error {
	b, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}
