package learn

import (
	"encoding/json"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/cfmint/cfmint/internal/policy"
)

func TestMatch(t *testing.T) {
	tb := DefaultTable()
	for _, tc := range []struct {
		method, path, want string
		params             map[string]string
	}{
		{"GET", "/accounts/abc/workers/scripts", "/accounts/{account_id}/workers/scripts", map[string]string{"account_id": "abc"}},
		{"PUT", "/accounts/abc/workers/scripts/hello", "/accounts/{account_id}/workers/scripts/{script_name}", map[string]string{"account_id": "abc", "script_name": "hello"}},
		// A literal segment beats a parameter: export is not a record id.
		{"GET", "/zones/z1/dns_records/export", "/zones/{zone_id}/dns_records/export", map[string]string{"zone_id": "z1"}},
		// scripts-search is its own operation, not a script.
		{"GET", "/accounts/abc/workers/scripts-search", "/accounts/{account_id}/workers/scripts-search", map[string]string{"account_id": "abc"}},
		{"PUT", "/accounts/abc/storage/kv/namespaces/ns/values/a%2Fb", "/accounts/{account_id}/storage/kv/namespaces/{namespace_id}/values/{key_name}", map[string]string{"account_id": "abc", "namespace_id": "ns", "key_name": "a%2Fb"}},
		{"POST", "/accounts/abc/d1/database/db1/query", "/accounts/{account_id}/d1/database/{database_id}/query", map[string]string{"account_id": "abc", "database_id": "db1"}},
		{"GET", "/zones", "/zones", map[string]string{}},
		// R2 object keys take the rest of the path.
		{"PUT", "/accounts/abc/r2/buckets/assets/objects/site/a/index.html", "/accounts/{account_id}/r2/buckets/{bucket_name}/objects/{object_key}", map[string]string{"bucket_name": "assets", "object_key": "site/a/index.html"}},
		{"GET", "/zones//dns_records", "", nil}, // no empty parameter
		{"DELETE", "/zones", "", nil},           // method matters
		{"GET", "/accounts/abc/unheard-of", "", nil},
	} {
		op, params, ok := tb.Match(tc.method, tc.path)
		if tc.want == "" {
			if ok {
				t.Errorf("%s %s matched %s, want no match", tc.method, tc.path, op.Path)
			}
			continue
		}
		if !ok || op.Path != tc.want {
			t.Errorf("%s %s matched %q (%v), want %s", tc.method, tc.path, op.Path, ok, tc.want)
			continue
		}
		for k, v := range tc.params {
			if params[k] != v {
				t.Errorf("%s %s: param %s = %q, want %q", tc.method, tc.path, k, params[k], v)
			}
		}
	}
}

func TestGeneralize(t *testing.T) {
	tb := DefaultTable()
	for path, want := range map[string]string{
		// The table follows services with {service_name}: a Worker's name is not printed.
		"/accounts/0123abc/workers/services/my-worker":  "/accounts/{account_id}/workers/services/{service_name}",
		"/accounts/0123abc/brand-new/v9/thing":          "/accounts/{account_id}/brand-new/{id}/thing",
		"/zones/9f00/brand_new/xyz123":                  "/zones/{zone_id}/brand_new/{id}",
		"/accounts/0123abc/workers/scripts/x/brand-new": "/accounts/{account_id}/workers/scripts/{script_name}/brand-new",
		"/things/AbC": "/things/{id}",
	} {
		if got, _ := tb.Generalize(path); got != want {
			t.Errorf("Generalize(%s) = %s, want %s", path, got, want)
		}
	}
}

func op(path string, groups ...string) Operation {
	return Operation{Method: "GET", Path: path, Groups: groups}
}

func TestCover(t *testing.T) {
	for _, tc := range []struct {
		name string
		ops  []Operation
		want []string
	}{
		{"nothing", nil, nil},
		{"Read where accepted", []Operation{op("/accounts/{account_id}/d1/database", "D1 Read", "D1 Write")}, []string{"D1 Read"}},
		{"Write when a call needs it covers the reads", []Operation{
			op("/accounts/{account_id}/d1/database", "D1 Read", "D1 Write"),
			op("/accounts/{account_id}/d1/database/{database_id}", "D1 Write"),
		}, []string{"D1 Write"}},
		{"own product over a broad group", []Operation{op("/accounts/{account_id}/queues", "Queues Write", "Queues Read", "Workers Scripts Write", "Workers Scripts Read")}, []string{"Queues Read"}},
		{"own product over another read", []Operation{op("/accounts/{account_id}/workers/scripts", "Workers Tail Read", "Workers Scripts Write", "Workers Scripts Read")}, []string{"Workers Scripts Read"}},
		{"zone read for a zone", []Operation{op("/zones/{zone_id}", "Zone Read", "DNS Read", "DNS Write", "Cache Purge")}, []string{"Zone Read"}},
		{"a broad group needed anyway covers the product's calls", []Operation{
			op("/accounts/{account_id}/queues/{queue_id}/messages", "Queues Write", "Workers Scripts Write"),
			op("/accounts/{account_id}/workers/scripts/{script_name}", "Workers Scripts Write"),
		}, []string{"Workers Scripts Write"}},
		{"several accepted groups", []Operation{
			op("/zones/{zone_id}", "Zone Read", "DNS Read", "DNS Write"),
			op("/zones/{zone_id}/dns_records", "DNS Write"),
			op("/accounts/{account_id}/storage/kv/namespaces/{namespace_id}/values/{key_name}", "Workers KV Storage Write"),
		}, []string{"DNS Write", "Workers KV Storage Write"}},
		{"unknown operations are not guessed", []Operation{
			op("/accounts/{account_id}/workers/scripts/{script_name}/secrets-bulk"),
			op("/accounts/{account_id}/d1/database", "D1 Read", "D1 Write"),
		}, []string{"D1 Read"}},
		{"only unknown", []Operation{op("/x")}, nil},
	} {
		if got := Cover(tc.ops); !slices.Equal(got, tc.want) {
			t.Errorf("%s: Cover = %q, want %q", tc.name, got, tc.want)
		}
	}
}

func call(method, path string, status int) Call {
	tb := DefaultTable()
	c := Call{Method: method, Status: status}
	if o, params, ok := tb.Match(method, path); ok {
		c.Template, c.Known, c.Groups, c.Params = o.Path, true, o.Groups, params
	} else {
		c.Template, c.Params = tb.Generalize(path)
	}
	return c
}

func TestAnalyze(t *testing.T) {
	acct, zone := "0123456789abcdef0123456789abcdef", "fedcba9876543210fedcba9876543210"
	r := Analyze([]Call{
		call("GET", "/accounts/"+acct+"/workers/services/hello", 404),
		call("PUT", "/accounts/"+acct+"/workers/scripts/hello", 200),
		call("PUT", "/accounts/"+acct+"/workers/scripts/hello", 200),
		call("PATCH", "/accounts/"+acct+"/workers/scripts/hello/secrets-bulk", 200),
		call("GET", "/zones", 200),
		call("GET", "/zones/"+zone+"/workers/routes", 403),
		call("PUT", "/accounts/"+acct+"/r2/buckets/assets", 200),
	}, map[string]string{zone: "example.com"}, []string{"example.com"})
	want := []string{"Workers R2 Storage Write", "Workers Routes Read", "Workers Scripts Write", "Zone Read"}
	if !slices.Equal(r.Permissions, want) {
		t.Errorf("permissions %q, want %q", r.Permissions, want)
	}
	if !slices.Equal(r.Zones, []string{"example.com"}) || !slices.Equal(r.Accounts, []string{acct}) || !slices.Equal(r.R2Buckets, []string{"assets"}) {
		t.Errorf("zones %q accounts %q buckets %q", r.Zones, r.Accounts, r.R2Buckets)
	}
	if !slices.Equal(r.Unknown, []string{"GET /accounts/{account_id}/workers/services/{service_name}", "PATCH /accounts/{account_id}/workers/scripts/{script_name}/secrets-bulk"}) {
		t.Errorf("unknown %q", r.Unknown)
	}
	if !slices.Equal(r.Forbidden, []string{"GET /zones/{zone_id}/workers/routes"}) {
		t.Errorf("forbidden %q", r.Forbidden)
	}
	if len(r.Operations) != 6 || r.Operations[1].Count != 2 {
		t.Errorf("operations %+v, want 6 with the PUT counted twice", r.Operations)
	}
	var out strings.Builder
	r.WriteText(&out)
	for _, s := range []string{
		"      permissions: |\n        Workers R2 Storage Write\n",
		"      zones: example.com\n",
		"      account-id: " + acct + "\n",
		"      permissions: [Workers R2 Storage Write, Workers Routes Read, Workers Scripts Write, Zone Read]\n      zones: [example.com]\n",
		"no permission data: PATCH /accounts/{account_id}/workers/scripts/{script_name}/secrets-bulk",
		"403: GET /zones/{zone_id}/workers/routes",
		"learn sees only what the command did in this run",
	} {
		if !strings.Contains(out.String(), s) {
			t.Errorf("the report lacks %q:\n%s", s, out.String())
		}
	}
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	var keys map[string]json.RawMessage
	_ = json.Unmarshal(b, &keys)
	for _, k := range []string{"permissions", "zones", "accounts", "r2_buckets", "unknown", "operations"} {
		if _, ok := keys[k]; !ok {
			t.Errorf("JSON lacks %s: %s", k, b)
		}
	}
	if !strings.Contains(string(b), `{"method":"PUT","path":"/accounts/{account_id}/workers/scripts/{script_name}","status":200,"count":2,"accepted_groups":["Workers Scripts Write"]}`) {
		t.Errorf("JSON operations: %s", b)
	}
}

func TestPresetExactMatch(t *testing.T) {
	acct := "0123456789abcdef0123456789abcdef"
	r := Analyze([]Call{call("PUT", "/accounts/"+acct+"/workers/scripts/hello", 200), call("GET", "/accounts/"+acct+"/workers/subdomain", 200)}, nil, nil)
	if r.Preset != "workers-deploy" {
		t.Errorf("preset %q, want workers-deploy", r.Preset)
	}
	var out strings.Builder
	r.WriteText(&out)
	if !strings.Contains(out.String(), "      preset: workers-deploy\n") || !strings.Contains(out.String(), "      presets: [workers-deploy]\n") {
		t.Errorf("the report does not name the preset:\n%s", out.String())
	}
	// One group more is no preset.
	r = Analyze([]Call{call("PUT", "/accounts/"+acct+"/workers/scripts/hello", 200), call("GET", "/accounts/"+acct+"/d1/database", 200)}, nil, nil)
	if r.Preset != "" {
		t.Errorf("preset %q for %q, want none", r.Preset, r.Permissions)
	}
	for _, name := range policy.PresetNames() {
		if got := presetFor(policy.Presets[name].Groups); got != name {
			t.Errorf("presetFor(%q) = %q, want %s", policy.Presets[name].Groups, got, name)
		}
	}
}

// TestTableData checks the embedded table: the data file itself is embedded, so there is one
// copy; every group it names has its scopes in groups.tsv, which agree with Cloudflare's list.
func TestTableData(t *testing.T) {
	disk, err := os.ReadFile("operations.tsv")
	if err != nil {
		t.Fatal(err)
	}
	if string(disk) != operationsTSV {
		t.Fatal("the embedded operations.tsv differs from the file")
	}
	head := strings.SplitN(operationsTSV, "\nmethod\t", 2)[0]
	for _, s := range []string{"Source:", "Collected: 20"} {
		if !strings.Contains(head, s) {
			t.Errorf("operations.tsv's header does not say %q", s)
		}
	}
	var listed []struct {
		Name   string   `json:"name"`
		Scopes []string `json:"scopes"`
	}
	b, err := os.ReadFile("../cfgroups/permission-groups.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &listed); err != nil {
		t.Fatal(err)
	}
	scopes := map[string][]string{}
	for _, g := range listed {
		for _, s := range g.Scopes {
			if !slices.Contains(scopes[g.Name], s) {
				scopes[g.Name] = append(scopes[g.Name], s)
			}
		}
	}
	ops := DefaultTable().Operations()
	if len(ops) < 174 {
		t.Errorf("%d operations, want at least 174", len(ops))
	}
	for _, o := range ops {
		for _, g := range o.Groups {
			want := scopes[g]
			slices.Sort(want)
			if len(want) == 0 {
				t.Errorf("%s %s: group %q is not in Cloudflare's list", o.Method, o.Path, g)
			} else if !slices.Equal(groupScopes[g], want) {
				t.Errorf("groups.tsv gives %q scopes %q, Cloudflare's list %q", g, groupScopes[g], want)
			}
		}
	}
}

func TestParseTableErrors(t *testing.T) {
	for _, data := range []string{
		"",
		"nope\n",
		"method\tpath\toperation_id\taccepted_groups\nGET\tno-slash\tx\t\n",
		"method\tpath\toperation_id\taccepted_groups\nGET\t/a\tx\t\nGET\t/a\ty\t\n",
	} {
		if _, err := ParseTable(data); err == nil {
			t.Errorf("ParseTable(%q) succeeded", data)
		}
	}
}

// TestReportNamesNoZone: a zone group the run used without naming a zone asks for the zones
// rather than leave the line out (the action would refuse a zone group without zones).
func TestReportNamesNoZone(t *testing.T) {
	r := Analyze([]Call{call("GET", "/zones", 200)}, nil, nil)
	var out strings.Builder
	r.WriteText(&out)
	if r.Preset != "zone-read" || !strings.Contains(out.String(), "      zones: ...  # the run named no zone") {
		t.Errorf("preset %q, report:\n%s", r.Preset, out.String())
	}
}
