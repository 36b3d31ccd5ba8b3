package learn

import (
	_ "embed"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"

	"github.com/cfmint/cfmint/internal/logsafe"
	"github.com/cfmint/cfmint/internal/policy"
)

// groupsTSV holds the scopes of the groups the operations table names.
//
//go:embed groups.tsv
var groupsTSV string

// groupScopes maps a group name to its scopes.
var groupScopes = parseScopes(groupsTSV)

func parseScopes(data string) map[string][]string {
	m := map[string][]string{}
	for _, line := range strings.Split(data, "\n") {
		if line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, "name\t") {
			continue
		}
		name, scopes, _ := strings.Cut(line, "\t")
		m[name] = strings.Split(scopes, "|")
	}
	return m
}

// Report is what learn found: the least groups, the resources they apply to, and what it could
// not tell.
type Report struct {
	// Preset is the preset whose groups are exactly Permissions, if one is.
	Preset      string   `json:"preset,omitempty"`
	Permissions []string `json:"permissions"`
	// Zones are the zones the calls named: by name where the command looked them up, else by id.
	Zones     []string `json:"zones"`
	Accounts  []string `json:"accounts"`
	R2Buckets []string `json:"r2_buckets"`
	// Unknown are the operations without permission data, "METHOD /path/{template}".
	Unknown []string `json:"unknown"`
	// Forbidden are the operations that were answered 403.
	Forbidden  []string   `json:"forbidden"`
	Operations []OpRecord `json:"operations"`

	zoneGroups, bucketGroups bool
	accountNames             map[string]string
}

// OpRecord is one operation the command made, with the answer it got.
type OpRecord struct {
	Method string   `json:"method"`
	Path   string   `json:"path"`
	Status int      `json:"status"`
	Count  int      `json:"count"`
	Groups []string `json:"accepted_groups"`
}

// Analyze works out the report for the calls; names maps zone and account ids to names, and
// lookedUp are zone names the command asked for.
func Analyze(calls []Call, names map[string]string, lookedUp []string) Report {
	r := Report{Permissions: []string{}, Zones: []string{}, Accounts: []string{}, R2Buckets: []string{}, Unknown: []string{}, Forbidden: []string{}, Operations: []OpRecord{}, accountNames: map[string]string{}}
	var ops []Operation
	index := map[string]int{}
	add := func(list *[]string, v string) {
		if v != "" && !slices.Contains(*list, v) {
			*list = append(*list, v)
		}
	}
	for _, c := range calls {
		key := fmt.Sprintf("%s %s %d", c.Method, c.Template, c.Status)
		if i, ok := index[key]; ok {
			r.Operations[i].Count++
		} else {
			index[key] = len(r.Operations)
			r.Operations = append(r.Operations, OpRecord{Method: c.Method, Path: c.Template, Status: c.Status, Count: 1, Groups: append([]string{}, c.Groups...)})
		}
		if len(c.Groups) == 0 {
			add(&r.Unknown, c.Method+" "+c.Template)
		} else {
			ops = append(ops, Operation{Method: c.Method, Path: c.Template, Groups: c.Groups})
		}
		if c.Status == 403 {
			add(&r.Forbidden, c.Method+" "+c.Template)
		}
		if id := c.Params["account_id"]; id != "" {
			add(&r.Accounts, id)
			if n := names[id]; n != "" {
				r.accountNames[id] = n
			}
		}
		if id := c.Params["zone_id"]; id != "" {
			if n := names[id]; n != "" {
				id = n
			}
			add(&r.Zones, id)
		}
		if b := c.Params["bucket_name"]; b != "" && strings.Contains(c.Template, "/r2/buckets/{bucket_name}") {
			if c.Jurisdiction != "" && c.Jurisdiction != "default" {
				b = c.Jurisdiction + ":" + b
			}
			add(&r.R2Buckets, b)
		}
	}
	for _, n := range lookedUp {
		add(&r.Zones, n)
	}
	sort.Strings(r.Zones)
	sort.Strings(r.Accounts)
	sort.Strings(r.R2Buckets)
	sort.Strings(r.Unknown)
	sort.Strings(r.Forbidden)
	r.Permissions = append(r.Permissions, Cover(ops)...)
	for _, g := range r.Permissions {
		scopes := groupScopes[g]
		r.zoneGroups = r.zoneGroups || slices.Contains(scopes, policy.ScopeZone) && !slices.Contains(scopes, policy.ScopeAccount)
		r.bucketGroups = r.bucketGroups || slices.Contains(scopes, policy.ScopeBucket)
	}
	r.Preset = presetFor(r.Permissions)
	return r
}

// presetFor names the preset whose groups are exactly groups.
func presetFor(groups []string) string {
	if len(groups) == 0 {
		return ""
	}
	for _, name := range policy.PresetNames() {
		p := policy.Presets[name]
		if sameSet(p.Groups, groups) || len(p.BucketGroups) > 0 && sameSet(p.BucketGroups, groups) {
			return name
		}
	}
	return ""
}

func sameSet(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for _, x := range a {
		if !slices.ContainsFunc(b, func(y string) bool { return strings.EqualFold(x, y) }) {
			return false
		}
	}
	return true
}

// yamlScalar quotes s when YAML would not read it back as the same plain string.
func yamlScalar(s string) string {
	if s == "" || strings.ContainsAny(s, ":#,[]{}&*!|>'\"%@`") || strings.TrimSpace(s) != s {
		return `"` + strings.ReplaceAll(strings.ReplaceAll(s, `\`, `\\`), `"`, `\"`) + `"`
	}
	return s
}

func flowList(items []string) string {
	q := make([]string, len(items))
	for i, s := range items {
		q[i] = yamlScalar(s)
	}
	return "[" + strings.Join(q, ", ") + "]"
}

// WriteText prints the report for a person: the step to paste, the broker rule's allow block,
// and what learn could not tell. Names the API or the command gave (zones, accounts, buckets,
// paths) are printed without line breaks or control characters.
func (r Report) WriteText(w io.Writer) {
	p := func(f string, a ...any) {
		for i, v := range a {
			if s, ok := v.(string); ok {
				a[i] = logsafe.String(s)
			}
		}
		fmt.Fprintf(w, f+"\n", a...)
	}
	p("")
	p("cfmint learn: %d call(s) to Cloudflare's API, %d operation(s).", r.calls(), len(r.Operations))
	if len(r.Permissions) == 0 {
		p("No call it saw has permission data, so there is nothing to suggest.")
	} else {
		p("")
		p("The least permissions for what this run did; paste this step before the job's own:")
		p("")
		p("  - uses: cfmint/cfmint@v1")
		p("    with:")
		p("      bootstrap-token: ${{ secrets.CLOUDFLARE_BOOTSTRAP_TOKEN }}")
		switch len(r.Accounts) {
		case 0:
		case 1:
			if n := r.accountNames[r.Accounts[0]]; n != "" {
				p("      account-id: %s  # %s", r.Accounts[0], n)
			} else {
				p("      account-id: %s", r.Accounts[0])
			}
		default:
			p("      account-id: %s  # the run used %d accounts: %s; a token is for one", r.Accounts[0], len(r.Accounts), strings.Join(r.Accounts, ", "))
		}
		if r.Preset != "" {
			p("      preset: %s", r.Preset)
		} else {
			p("      permissions: |")
			for _, g := range r.Permissions {
				p("        %s", g)
			}
		}
		switch {
		case r.zoneGroups && len(r.Zones) > 0:
			p("      zones: %s", strings.Join(r.Zones, ", "))
		case r.zoneGroups:
			p("      zones: ...  # the run named no zone: name those the job works on, or * for every zone")
		}
		if r.bucketGroups && len(r.R2Buckets) > 0 {
			p("      r2-buckets: %s", strings.Join(r.R2Buckets, ", "))
		}
		p("")
		p("With a broker, the rule's allow block:")
		p("")
		p("    allow:")
		if r.Preset != "" {
			p("      presets: [%s]", r.Preset)
		} else {
			p("      permissions: %s", flowList(r.Permissions))
		}
		if r.zoneGroups && len(r.Zones) > 0 {
			p("      zones: %s", flowList(r.Zones))
		}
		if r.bucketGroups && len(r.R2Buckets) > 0 {
			p("      r2_buckets: %s", flowList(r.R2Buckets))
		}
	}
	if len(r.R2Buckets) > 0 && !r.bucketGroups {
		p("")
		p("R2 buckets used: %s (through the REST API, which needs the account-wide group; a bucket-scoped token works over the S3 endpoint only).", strings.Join(r.R2Buckets, ", "))
	}
	if len(r.Unknown) > 0 {
		p("")
		p("learn cannot tell what allows these calls (Cloudflare's spec names no permission for them); add what they need yourself:")
		for _, u := range r.Unknown {
			p("  no permission data: %s", u)
		}
	}
	if len(r.Forbidden) > 0 {
		p("")
		p("These calls were refused with 403: the token used lacked a permission, so the run may have stopped short of what it would do with one that works:")
		for _, f := range r.Forbidden {
			p("  403: %s", f)
		}
	}
	p("")
	p("learn sees only what the command did in this run: a step that runs only on release needs a release run.")
}

func (r Report) calls() int {
	n := 0
	for _, o := range r.Operations {
		n += o.Count
	}
	return n
}
