package cfapitest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"strings"
	"testing"

	cloudflare "github.com/cloudflare/cloudflare-go/v6"
	"github.com/cloudflare/cloudflare-go/v6/workers"
)

// workerUpload is a multipart Worker upload as wrangler sends it: a "metadata" field, then one
// file part per module, named and filed under the module's name.
type workerUpload struct {
	metadata string // raw; "-" leaves the part out
	modules  []workerModule
}

func (u workerUpload) body(t *testing.T) (string, string) {
	t.Helper()
	var b bytes.Buffer
	mw := multipart.NewWriter(&b)
	if u.metadata != "-" {
		if err := mw.WriteField("metadata", u.metadata); err != nil {
			t.Fatal(err)
		}
	}
	for _, m := range u.modules {
		h := textproto.MIMEHeader{}
		h.Set("Content-Disposition", fmt.Sprintf(`form-data; name=%q; filename=%q`, m.name, m.name))
		h.Set("Content-Type", m.contentType)
		pw, err := mw.CreatePart(h)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = pw.Write(m.content)
	}
	if err := mw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.String(), mw.FormDataContentType()
}

const esModule = "application/javascript+module"

func helloUpload(body string) workerUpload {
	return workerUpload{
		metadata: `{"main_module":"index.js","bindings":[],"compatibility_date":"2025-01-01","compatibility_flags":[]}`,
		modules:  []workerModule{{name: "index.js", contentType: esModule, content: []byte(body)}},
	}
}

// send makes a raw request with a content type of its own and the given User-Agent.
func (w *world) send(t *testing.T, client *http.Client, method, path, secret, contentType, body, userAgent string) answer {
	t.Helper()
	h := http.Header{"Authorization": {"Bearer " + secret}}
	if userAgent != "" {
		h.Set("User-Agent", userAgent)
	}
	if contentType == "" {
		return w.doHeader(t, client, method, path, nil, h)
	}
	// doHeader sets application/json for a body; a multipart body needs its own type, so the
	// header goes in through a request of our own.
	req, err := http.NewRequest(method, w.URL()+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range h {
		req.Header[k] = v
	}
	req.Header.Set("Content-Type", contentType)
	res, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	a := answer{Status: res.StatusCode, Header: res.Header}
	var buf bytes.Buffer
	_, _ = buf.ReadFrom(res.Body)
	a.Body = buf.Bytes()
	a.JSONErr = json.Unmarshal(a.Body, &a.Env)
	return a
}

// upload sends u to PUT .../workers/scripts/{name} as wrangler would.
func (w *world) upload(t *testing.T, client *http.Client, secret, account, name string, u workerUpload) answer {
	t.Helper()
	body, ct := u.body(t)
	return w.send(t, client, http.MethodPut, "/accounts/"+account+"/workers/scripts/"+name, secret, ct, body, "wrangler/4.86.0")
}

func TestWorkersDeployEndpoints(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	from1, from2 := defaultClient, clientFrom("127.0.0.2")
	acct := func(id string) map[string]any { return map[string]any{acctKey(id): "*"} }
	write := w.issue(t, TokenSpec{Name: "scripts write", OwnerAccount: w.Account.ID, IPIn: []string{"127.0.0.1/32"},
		Policies: []Policy{{Groups: []string{"Workers Scripts Write"}, Resources: acct(w.Account.ID)}}})
	read := w.issue(t, TokenSpec{Name: "scripts read", OwnerAccount: w.Account.ID,
		Policies: []Policy{{Groups: []string{"Workers Scripts Read"}, Resources: acct(w.Account.ID)}}})
	dns := w.issue(t, TokenSpec{Name: "dns", OwnerAccount: w.Account.ID,
		Policies: []Policy{{Groups: []string{"DNS Write"}, Resources: allZonesOf(w.Account.ID)}}})
	other := w.issue(t, TokenSpec{Name: "other account", OwnerAccount: w.OtherAccount.ID,
		Policies: []Policy{{Groups: []string{"Workers Scripts Write"}, Resources: acct(w.OtherAccount.ID)}}})

	wantOK(t, w.upload(t, from1, write.Secret, w.Account.ID, "ci-worker", helloUpload("export default {}")))
	info, _ := w.Script(w.Account.ID, "ci-worker")
	var liveVersion string
	a := w.do(t, from1, http.MethodGet, "/accounts/"+w.Account.ID+"/workers/scripts/ci-worker/deployments", read.Secret, nil)
	var deps struct {
		Deployments []struct{ Versions []workerShare }
	}
	a.result(t, &deps)
	if len(deps.Deployments) != 1 || len(deps.Deployments[0].Versions) != 1 || info.Versions != 1 {
		t.Fatalf("after one upload: deployments %s, %d versions", a.Body, info.Versions)
	}
	liveVersion = deps.Deployments[0].Versions[0].VersionID

	base := "/accounts/" + w.Account.ID + "/workers"
	script := func(name, sub string) string { return base + "/scripts/" + name + sub }
	multi := func(u workerUpload) func(t *testing.T) (string, string) {
		return func(t *testing.T) (string, string) {
			body, ct := u.body(t)
			return ct, body
		}
	}
	jsonOf := func(s string) func(*testing.T) (string, string) {
		return func(*testing.T) (string, string) { return "application/json", s }
	}
	hundred := jsonOf(`{"strategy":"percentage","versions":[{"version_id":"` + liveVersion + `","percentage":100}]}`)
	cases := []struct {
		name   string
		tok    Bootstrap
		client *http.Client
		method string
		path   string
		body   func(*testing.T) (contentType, body string)
		status int
		code   int
		msg    string
	}{
		{"account subdomain, Write", write, from1, "GET", base + "/subdomain", nil, 200, 0, ""},
		{"account subdomain, Read", read, from1, "GET", base + "/subdomain", nil, 200, 0, ""},
		{"account subdomain, from another address", write, from2, "GET", base + "/subdomain", nil, 403, 10000, "Authentication error"},
		{"account subdomain, DNS Write", dns, from1, "GET", base + "/subdomain", nil, 403, 10000, "Authentication error"},
		{"account subdomain, another account's token", other, from1, "GET", base + "/subdomain", nil, 403, 10000, ""},

		{"service, Read", read, from1, "GET", base + "/services/ci-worker", nil, 200, 0, ""},
		{"service, missing", read, from1, "GET", base + "/services/nope", nil, 404, 10090, "workers.api.error.service_not_found"},
		{"service, missing, DNS Write", dns, from1, "GET", base + "/services/nope", nil, 403, 10000, ""},
		{"service, from another address", write, from2, "GET", base + "/services/ci-worker", nil, 403, 10000, ""},

		{"deployments, Read", read, from1, "GET", script("ci-worker", "/deployments"), nil, 200, 0, ""},
		{"deployments, missing Worker", read, from1, "GET", script("nope", "/deployments"), nil, 404, 10007, "This Worker does not exist on your account."},
		{"deployments, DNS Write", dns, from1, "GET", script("ci-worker", "/deployments"), nil, 403, 10000, ""},
		{"deploy, Write", write, from1, "POST", script("ci-worker", "/deployments"), hundred, 200, 0, ""},
		{"deploy, Read", read, from1, "POST", script("ci-worker", "/deployments"), hundred, 403, 10000, ""},
		{"deploy, unknown version", write, from1, "POST", script("ci-worker", "/deployments"),
			jsonOf(`{"strategy":"percentage","versions":[{"version_id":"` + workersUUID() + `","percentage":100}]}`), 400, 10210, ""},
		{"deploy, shares not adding up", write, from1, "POST", script("ci-worker", "/deployments"),
			jsonOf(`{"strategy":"percentage","versions":[{"version_id":"` + liveVersion + `","percentage":50}]}`), 400, 10210, ""},
		{"deploy, malformed", write, from1, "POST", script("ci-worker", "/deployments"), jsonOf(`{"versions":`), 400, 6007, ""},

		{"settings, Read", read, from1, "GET", script("ci-worker", "/settings"), nil, 200, 0, ""},
		{"settings, missing Worker", read, from1, "GET", script("nope", "/settings"), nil, 404, 10007, ""},
		{"settings, DNS Write", dns, from1, "GET", script("ci-worker", "/settings"), nil, 403, 10000, ""},
		{"script settings, Write", write, from1, "PATCH", script("ci-worker", "/script-settings"), jsonOf(`{"logpush":false,"tags":[]}`), 200, 0, ""},
		{"script settings, Read", read, from1, "PATCH", script("ci-worker", "/script-settings"), jsonOf(`{"tags":[]}`), 403, 10000, ""},
		{"script settings, malformed", write, from1, "PATCH", script("ci-worker", "/script-settings"), jsonOf(`{`), 400, 6007, ""},

		{"secrets, Read", read, from1, "GET", script("ci-worker", "/secrets"), nil, 200, 0, ""},
		{"secrets, Write", write, from1, "GET", script("ci-worker", "/secrets"), nil, 200, 0, ""},
		{"secrets, missing Worker", read, from1, "GET", script("nope", "/secrets"), nil, 404, 10007, "This Worker does not exist on your account."},
		{"secrets, DNS Write", dns, from1, "GET", script("ci-worker", "/secrets"), nil, 403, 10000, "Authentication error"},
		{"secrets, another account's token", other, from1, "GET", script("ci-worker", "/secrets"), nil, 403, 10000, ""},
		{"secrets, from another address", write, from2, "GET", script("ci-worker", "/secrets"), nil, 403, 10000, "Authentication error"},

		{"workers.dev switch, Read", read, from1, "GET", script("ci-worker", "/subdomain"), nil, 200, 0, ""},
		{"workers.dev switch, missing Worker", read, from1, "GET", script("nope", "/subdomain"), nil, 404, 10007, ""},
		{"enable workers.dev, Write", write, from1, "POST", script("ci-worker", "/subdomain"), jsonOf(`{"enabled":true}`), 200, 0, ""},
		{"enable workers.dev, Read", read, from1, "POST", script("ci-worker", "/subdomain"), jsonOf(`{"enabled":true}`), 403, 10000, ""},
		{"enable workers.dev, from another address", write, from2, "POST", script("ci-worker", "/subdomain"), jsonOf(`{"enabled":true}`), 403, 10000, ""},
		{"enable workers.dev, missing Worker", write, from1, "POST", script("nope", "/subdomain"), jsonOf(`{"enabled":true}`), 404, 10007, ""},
		{"enable workers.dev, no enabled", write, from1, "POST", script("ci-worker", "/subdomain"), jsonOf(`{}`), 400, 1001, ""},
		{"enable workers.dev, malformed", write, from1, "POST", script("ci-worker", "/subdomain"), jsonOf(`{"enabled":`), 400, 6007, ""},

		{"upload, Write", write, from1, "PUT", script("upload-ok", ""), multi(helloUpload("export default {}")), 200, 0, ""},
		{"upload, Read", read, from1, "PUT", script("upload-read", ""), multi(helloUpload("export default {}")), 403, 10000, ""},
		{"upload, from another address", write, from2, "PUT", script("upload-far", ""), multi(helloUpload("export default {}")), 403, 10000, ""},
		{"upload, another account", write, from1, "PUT", "/accounts/" + w.OtherAccount.ID + "/workers/scripts/x", multi(helloUpload("export default {}")), 403, 10000, ""},
		{"upload, no metadata", write, from1, "PUT", script("upload-bad", ""),
			multi(workerUpload{metadata: "-", modules: helloUpload("").modules}), 400, 10021, ""},
		{"upload, metadata not JSON", write, from1, "PUT", script("upload-bad", ""),
			multi(workerUpload{metadata: "{", modules: helloUpload("").modules}), 400, 6007, ""},
		{"upload, no entry point", write, from1, "PUT", script("upload-bad", ""),
			multi(workerUpload{metadata: `{"compatibility_date":"2025-01-01"}`, modules: helloUpload("").modules}), 400, 10021, ""},
		{"upload, entry point not uploaded", write, from1, "PUT", script("upload-bad", ""),
			multi(workerUpload{metadata: `{"main_module":"worker.js"}`, modules: helloUpload("").modules}), 400, 10021, `No such module "worker.js".`},
		{"upload, no boundary", write, from1, "PUT", script("upload-bad", ""),
			func(*testing.T) (string, string) { return "multipart/form-data", "x" }, 400, 1001, ""},

		{"version, Write", write, from1, "POST", script("ci-worker", "/versions"), multi(helloUpload("export default {}")), 200, 0, ""},
		{"version, Read", read, from1, "POST", script("ci-worker", "/versions"), multi(helloUpload("export default {}")), 403, 10000, ""},
		{"version, missing Worker", write, from1, "POST", script("nope", "/versions"), multi(helloUpload("export default {}")), 404, 10007, ""},
		{"version, not multipart", write, from1, "POST", script("ci-worker", "/versions"), jsonOf(`{}`), 400, 1001, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ct, body := "", ""
			if tc.body != nil {
				ct, body = tc.body(t)
			}
			a := w.send(t, tc.client, tc.method, tc.path, tc.tok.Secret, ct, body, "")
			if tc.status == 200 {
				wantOK(t, a)
				return
			}
			wantError(t, a, tc.status, tc.code)
			if tc.msg != "" && a.message() != tc.msg {
				t.Errorf("message = %q, want %q", a.message(), tc.msg)
			}
		})
	}
	t.Run("nothing stored by refused uploads", func(t *testing.T) {
		// Runs after the parallel cases above: t.Run waits for them.
		for _, name := range []string{"upload-read", "upload-far", "upload-bad"} {
			if _, ok := w.Script(w.Account.ID, name); ok {
				t.Errorf("refused upload stored Worker %s", name)
			}
		}
		if got := w.Scripts(w.OtherAccount.ID); len(got) != 1 || got[0] != "hello" {
			t.Errorf("other account's Workers = %v, want only hello", got)
		}
	})
}

// TestWorkersDeployRevokedToken checks that every Workers endpoint answers a token that no
// longer works the way the Workers API does: 401 / 10000, not the 1000 of the verify endpoints.
func TestWorkersDeployRevokedToken(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	spec := TokenSpec{Name: "scripts", OwnerAccount: w.Account.ID,
		Policies: []Policy{{Groups: []string{"Workers Scripts Write"}, Resources: map[string]any{acctKey(w.Account.ID): "*"}}}}
	disabled, revoked := w.issue(t, spec), w.issue(t, spec)
	wantOK(t, w.upload(t, defaultClient, disabled.Secret, w.Account.ID, "ci-worker", helloUpload("export default {}")))
	if !w.DisableToken(disabled.ID) || !w.RevokeToken(revoked.ID) {
		t.Fatal("token not found")
	}
	n := 0
	for _, rt := range w.routes {
		if rt.access != workersAPI {
			continue
		}
		n++
		path := strings.NewReplacer("{account_id}", w.Account.ID, "{script_name}", "ci-worker").Replace(rt.path)
		for _, tok := range []Bootstrap{disabled, revoked} {
			a := w.send(t, defaultClient, rt.method, path, tok.Secret, "application/json", "{}", "wrangler/4.86.0")
			wantError(t, a, 401, 10000)
			if a.message() != "Authentication error" {
				t.Errorf("%s %s: message %q, want Authentication error", rt.method, path, a.message())
			}
		}
	}
	if n != 12 {
		t.Errorf("checked %d Workers routes, want the 12 of the script list, the upload and wrangler deploy", n)
	}
	if info, _ := w.Script(w.Account.ID, "ci-worker"); info.Versions != 1 {
		t.Errorf("refused tokens changed the Worker: %d versions, want 1", info.Versions)
	}
}

// TestWorkersDeployFlow drives a first deploy and a redeploy with cloudflare-go, a client other
// than wrangler, and checks the answers' shapes and the stored state.
func TestWorkersDeployFlow(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	tok := w.issue(t, TokenSpec{Name: "scripts", OwnerAccount: w.Account.ID,
		Policies: []Policy{{Groups: []string{"Workers Scripts Write"}, Resources: map[string]any{acctKey(w.Account.ID): "*"}}}})
	opts := w.sdk(tok.Secret)
	ctx := context.Background()
	acct := cloudflare.F(w.Account.ID)

	up, err := workers.NewScriptService(opts...).Update(ctx, "flow", workers.ScriptUpdateParams{
		AccountID: acct,
		Metadata: cloudflare.F(workers.ScriptUpdateParamsMetadata{
			MainModule:        cloudflare.F("worker.mjs"),
			CompatibilityDate: cloudflare.F("2025-06-01"),
		}),
		Files: cloudflare.F([]io.Reader{namedModule("worker.mjs", esModule, "export default { fetch() { return new Response('v1') } }")}),
	})
	if err != nil {
		t.Fatalf("upload: %v", err)
	}
	var raw struct {
		DeploymentID string `json:"deployment_id"`
	}
	if err := json.Unmarshal([]byte(up.JSON.RawJSON()), &raw); err != nil {
		t.Fatal(err)
	}
	if up.ID != "flow" || !isID(up.Tag) || len(up.Etag) != 64 || !up.HasModules || up.CompatibilityDate != "2025-06-01" ||
		up.LastDeployedFrom != "api" || up.StartupTimeMs != startupTimeMs || len(raw.DeploymentID) != 36 {
		t.Errorf("upload result = %s", up.JSON.RawJSON())
	}

	sub, err := workers.NewSubdomainService(opts...).Get(ctx, workers.SubdomainGetParams{AccountID: acct})
	if err != nil || sub.Subdomain != "example-account" || w.WorkersSubdomain(w.Account.ID) != "example-account" {
		t.Errorf("account subdomain = %+v, %v; want example-account", sub, err)
	}
	other := w.do(t, defaultClient, http.MethodGet, "/accounts/"+w.OtherAccount.ID+"/workers/subdomain", tok.Secret, nil)
	wantError(t, other, 403, 10000)

	subs := workers.NewScriptSubdomainService(opts...)
	if got, err := subs.Get(ctx, "flow", workers.ScriptSubdomainGetParams{AccountID: acct}); err != nil || got.Enabled || got.PreviewsEnabled {
		t.Errorf("new Worker's workers.dev switch = %+v, %v; want off", got, err)
	}
	if got, err := subs.New(ctx, "flow", workers.ScriptSubdomainNewParams{AccountID: acct, Enabled: cloudflare.F(true)}); err != nil || !got.Enabled || !got.PreviewsEnabled {
		t.Errorf("enabled without previews_enabled = %+v, %v; want previews to follow", got, err)
	}
	if got, err := subs.New(ctx, "flow", workers.ScriptSubdomainNewParams{AccountID: acct, Enabled: cloudflare.F(true), PreviewsEnabled: cloudflare.F(false)}); err != nil || !got.Enabled || got.PreviewsEnabled {
		t.Errorf("enabled, previews off = %+v, %v", got, err)
	}

	deps := workers.NewScriptDeploymentService(opts...)
	list, err := deps.List(ctx, "flow", workers.ScriptDeploymentListParams{AccountID: acct})
	if err != nil || len(list.Deployments) != 1 {
		t.Fatalf("deployments = %+v, %v; want one", list, err)
	}
	d := list.Deployments[0]
	if len(d.Versions) != 1 || d.Versions[0].VersionID != raw.DeploymentID || d.Versions[0].Percentage != 100 ||
		d.Strategy != "percentage" || d.Source != "api" || d.Annotations.WorkersTriggeredBy != "upload" {
		t.Errorf("first workerDeployment = %s, want all traffic on %s", d.JSON.RawJSON(), raw.DeploymentID)
	}

	v2, err := workers.NewScriptVersionService(opts...).New(ctx, "flow", workers.ScriptVersionNewParams{
		AccountID: acct,
		Metadata: cloudflare.F(workers.ScriptVersionNewParamsMetadata{
			MainModule:        cloudflare.F("worker.mjs"),
			CompatibilityDate: cloudflare.F("2025-06-02"),
		}),
		Files: cloudflare.F([]io.Reader{namedModule("worker.mjs", esModule, "export default { fetch() { return new Response('v2') } }")}),
	})
	if err != nil || v2.Number != 2 || len(v2.ID) != 36 || v2.Resources.ScriptRuntime.CompatibilityDate != "2025-06-02" {
		t.Fatalf("second version = %+v, %v", v2, err)
	}
	if info, _ := w.Script(w.Account.ID, "flow"); info.Versions != 2 || !strings.Contains(info.Modules["worker.mjs"], "v1") {
		t.Errorf("an uploaded version went live before its workerDeployment: %+v", info)
	}
	nd, err := deps.New(ctx, "flow", workers.ScriptDeploymentNewParams{AccountID: acct, Deployment: workers.DeploymentParam{
		Strategy: cloudflare.F(workers.DeploymentStrategyPercentage),
		Versions: cloudflare.F([]workers.DeploymentVersionParam{{VersionID: cloudflare.F(v2.ID), Percentage: cloudflare.F(100.0)}}),
	}})
	if err != nil || nd.Versions[0].VersionID != v2.ID {
		t.Fatalf("deploy v2 = %+v, %v", nd, err)
	}
	list, _ = deps.List(ctx, "flow", workers.ScriptDeploymentListParams{AccountID: acct})
	if len(list.Deployments) != 2 || list.Deployments[0].ID != nd.ID {
		t.Errorf("deployments after redeploy: %+v, want the new one first", list)
	}
	info, _ := w.Script(w.Account.ID, "flow")
	if info.Versions != 2 || info.Deployments != 2 || info.MainModule != "worker.mjs" || info.CompatibilityDate != "2025-06-02" ||
		!strings.Contains(info.Modules["worker.mjs"], "v2") || !info.WorkersDev || info.PreviewsEnabled || info.LastDeployedFrom != "api" {
		t.Errorf("after redeploy: %+v", info)
	}

	settings, err := workers.NewScriptScriptAndVersionSettingService(opts...).Get(ctx, "flow", workers.ScriptScriptAndVersionSettingGetParams{AccountID: acct})
	if err != nil || settings.CompatibilityDate != "2025-06-02" || settings.UsageModel != "standard" {
		t.Errorf("settings = %+v, %v", settings, err)
	}
	ss, err := workers.NewScriptSettingService(opts...).Edit(ctx, "flow", workers.ScriptSettingEditParams{AccountID: acct,
		ScriptSetting: workers.ScriptSettingParam{Tags: cloudflare.F([]string{"team:ci"}), Logpush: cloudflare.F(true)}})
	if err != nil || !ss.Logpush || len(ss.Tags) != 1 || ss.Tags[0] != "team:ci" {
		t.Errorf("script settings = %+v, %v", ss, err)
	}

	// The services view wrangler reads before deploying.
	a := w.send(t, defaultClient, http.MethodGet, "/accounts/"+w.Account.ID+"/workers/services/flow", tok.Secret, "", "", "")
	var svc struct {
		ID                 string
		DefaultEnvironment struct {
			Environment string
			Script      struct {
				Tag              string
				Tags             []string
				LastDeployedFrom string `json:"last_deployed_from"`
			}
		} `json:"default_environment"`
	}
	a.result(t, &svc)
	if svc.ID != "flow" || svc.DefaultEnvironment.Environment != "production" || svc.DefaultEnvironment.Script.Tag != up.Tag ||
		svc.DefaultEnvironment.Script.LastDeployedFrom != "api" || len(svc.DefaultEnvironment.Script.Tags) != 1 {
		t.Errorf("service = %s", a.Body)
	}

	// A bare-body upload replaces the Worker, versions and all, as it did before uploads had
	// versions.
	wantOK(t, w.do(t, defaultClient, http.MethodPut, "/accounts/"+w.Account.ID+"/workers/scripts/flow", tok.Secret, "addEventListener('fetch', () => {})"))
	if info, _ := w.Script(w.Account.ID, "flow"); info.Versions != 0 || info.MainModule != "" || info.WorkersDev {
		t.Errorf("after a bare upload: %+v", info)
	}
	if got := w.Scripts(w.Account.ID); strings.Join(got, ",") != "flow,hello" {
		t.Errorf("Scripts = %v, want flow and hello", got)
	}
	if w.Scripts(newID()) != nil || w.WorkersSubdomain(newID()) != "" {
		t.Error("accessors answered for a missing account")
	}
	if _, ok := w.Script(w.Account.ID, "nope"); ok {
		t.Error("Script found a missing Worker")
	}
}

// TestWorkersDeployUploadFromWrangler checks what the fake keeps of a wrangler-shaped upload.
func TestWorkersDeployUploadFromWrangler(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	tok := w.issue(t, TokenSpec{Name: "scripts", OwnerAccount: w.Account.ID,
		Policies: []Policy{{Groups: []string{"Workers Scripts Write"}, Resources: map[string]any{acctKey(w.Account.ID): "*"}}}})
	u := helloUpload("export default { fetch() { return new Response('hi') } }")
	u.modules = append(u.modules, workerModule{name: "lib/util.js", contentType: esModule, content: []byte("export const x = 1")})
	a := w.upload(t, defaultClient, tok.Secret, w.Account.ID, "from-wrangler", u)
	wantOK(t, a)
	var res struct {
		ID, Etag         string
		LastDeployedFrom string `json:"last_deployed_from"`
		DeploymentID     string `json:"deployment_id"`
		StartupTimeMs    int    `json:"startup_time_ms"`
		HasModules       bool   `json:"has_modules"`
	}
	a.result(t, &res)
	if res.ID != "from-wrangler" || res.LastDeployedFrom != "wrangler" || res.StartupTimeMs != startupTimeMs || !res.HasModules || len(res.DeploymentID) != 36 {
		t.Errorf("upload result = %s", a.Env.Result)
	}
	info, ok := w.Script(w.Account.ID, "from-wrangler")
	if !ok || info.MainModule != "index.js" || info.CompatibilityDate != "2025-01-01" || len(info.Modules) != 2 ||
		info.Modules["index.js"] != "export default { fetch() { return new Response('hi') } }" || info.Modules["lib/util.js"] == "" || info.WorkersDev || info.LastDeployedFrom != "wrangler" {
		t.Errorf("stored Worker = %+v", info)
	}
	// The upload shows in the script list with its etag.
	a = w.do(t, defaultClient, http.MethodGet, "/accounts/"+w.Account.ID+"/workers/scripts", tok.Secret, nil)
	var list []struct{ ID, Etag string }
	a.result(t, &list)
	if len(list) != 2 || list[0].ID != "from-wrangler" || list[0].Etag != res.Etag {
		t.Errorf("scripts = %s, want from-wrangler with etag %s", a.Env.Result, res.Etag)
	}
}

// sdkModule is a named, typed upload part for cloudflare-go's multipart encoder.
type sdkModule struct {
	*strings.Reader
	name, contentType string
}

func (m sdkModule) Filename() string    { return m.name }
func (m sdkModule) ContentType() string { return m.contentType }

func namedModule(name, contentType, content string) io.Reader {
	return sdkModule{strings.NewReader(content), name, contentType}
}

// TestWorkersSecrets checks the secrets list wrangler reads before a deploy: names and types of
// the Worker's secrets, never their values, kept across uploads that do not name them.
func TestWorkersSecrets(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	tok := w.issue(t, TokenSpec{Name: "scripts", OwnerAccount: w.Account.ID,
		Policies: []Policy{{Groups: []string{"Workers Scripts Write"}, Resources: map[string]any{acctKey(w.Account.ID): "*"}}}})
	const secretValue = "s3cr3t-value-never-shown"
	withBindings := func(bindings string) workerUpload {
		u := helloUpload("export default {}")
		u.metadata = `{"main_module":"index.js","compatibility_date":"2025-01-01","bindings":` + bindings + `}`
		return u
	}
	secrets := workers.NewScriptSecretService(w.sdk(tok.Secret)...)
	list := func(t *testing.T) []string {
		t.Helper()
		page, err := secrets.List(context.Background(), "ci-worker", workers.ScriptSecretListParams{AccountID: cloudflare.F(w.Account.ID)})
		if err != nil {
			t.Fatalf("list secrets: %v", err)
		}
		var out []string
		for _, s := range page.Result {
			out = append(out, s.Name+":"+string(s.Type))
		}
		return out
	}

	_, err := secrets.List(context.Background(), "ci-worker", workers.ScriptSecretListParams{AccountID: cloudflare.F(w.Account.ID)})
	wantAPIError(t, err, 404, 10007)

	a := w.upload(t, defaultClient, tok.Secret, w.Account.ID, "ci-worker", withBindings(
		`[{"type":"secret_text","name":"API_KEY","text":"`+secretValue+`"},{"type":"plain_text","name":"MODE","text":"prod"}]`))
	wantOK(t, a)
	if got := list(t); strings.Join(got, ",") != "API_KEY:secret_text" {
		t.Errorf("secrets = %v, want API_KEY:secret_text", got)
	}
	info, _ := w.Script(w.Account.ID, "ci-worker")
	if strings.Join(info.Secrets, ",") != "API_KEY" || info.Vars["MODE"] != "prod" || len(info.Vars) != 1 {
		t.Errorf("Script = secrets %v vars %v, want API_KEY and MODE=prod", info.Secrets, info.Vars)
	}

	// A later version that binds only a var keeps the secret; a new secret joins it.
	body, ct := withBindings(`[{"type":"plain_text","name":"MODE","text":"staging"},{"type":"secret_text","name":"B_TOKEN","text":"` + secretValue + `"}]`).body(t)
	v := w.send(t, defaultClient, http.MethodPost, "/accounts/"+w.Account.ID+"/workers/scripts/ci-worker/versions", tok.Secret, ct, body, "")
	wantOK(t, v)
	if got := list(t); strings.Join(got, ",") != "API_KEY:secret_text,B_TOKEN:secret_text" {
		t.Errorf("secrets after a second version = %v, want API_KEY and B_TOKEN", got)
	}

	// No answer shows a secret's value.
	settings := w.do(t, defaultClient, http.MethodGet, "/accounts/"+w.Account.ID+"/workers/scripts/ci-worker/settings", tok.Secret, nil)
	wantOK(t, settings)
	raw := w.do(t, defaultClient, http.MethodGet, "/accounts/"+w.Account.ID+"/workers/scripts/ci-worker/secrets", tok.Secret, nil)
	for what, b := range map[string][]byte{"upload": a.Body, "version": v.Body, "settings": settings.Body, "secrets": raw.Body} {
		if strings.Contains(string(b), secretValue) {
			t.Errorf("the %s answer shows a secret's value: %s", what, b)
		}
	}
	if !strings.Contains(string(settings.Body), `"name":"API_KEY"`) || !strings.Contains(string(v.Body), `"name":"B_TOKEN"`) {
		t.Errorf("answers lost the secrets' names: settings %s, version %s", settings.Body, v.Body)
	}
}
