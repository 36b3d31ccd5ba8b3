package cfapitest

// The Workers endpoints `wrangler deploy` calls to put a Worker on
// workers.dev, as wrangler 4 calls them (learned from its source and from
// recording its requests against this fake):
//
//	GET   /accounts/{account_id}/workers/services/{script_name}               does the Worker exist? (10090 when not)
//	GET   /accounts/{account_id}/workers/scripts/{script_name}/deployments    is its last workerDeployment a split one? (10007 when no Worker)
//	GET   /accounts/{account_id}/workers/scripts/{script_name}/settings       which bindings does it have? (errors ignored)
//	PUT   /accounts/{account_id}/workers/scripts/{script_name}                first deploy: upload and deploy (multipart)
//	POST  /accounts/{account_id}/workers/scripts/{script_name}/versions       later deploys: upload a version (multipart) ...
//	POST  /accounts/{account_id}/workers/scripts/{script_name}/deployments    ... deploy it to 100% ...
//	PATCH /accounts/{account_id}/workers/scripts/{script_name}/script-settings ... and reset the unversioned settings
//	GET   /accounts/{account_id}/workers/scripts/{script_name}/secrets        would a var or binding replace a secret? (10007 when no Worker)
//	GET   /accounts/{account_id}/workers/subdomain                            the account's workers.dev subdomain
//	GET   /accounts/{account_id}/workers/scripts/{script_name}/subdomain      is the Worker on workers.dev?
//	POST  /accounts/{account_id}/workers/scripts/{script_name}/subdomain      put it there
//
// The secrets check runs when the config has vars or bindings: from wrangler
// 4.100 on every time, before that only with --strict or on a terminal.
//
// Every one of them goes through the shared pipeline (authentication, rate
// limit, IP filter) and then checks its permission group on the account
// before it looks at the Worker, so a token without the group cannot tell
// which Workers exist. The groups follow Cloudflare's API reference
// ("Accepted Permissions") where it lists them; see endpointGroups.
//
// The fake runs no Worker code: it stores what was uploaded, answers with
// the shapes Cloudflare answers with (the fields wrangler and cloudflare-go
// read), and keeps versions, deployments and the workers.dev switch.

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"mime"
	"mime/multipart"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"time"
)

// Error codes of the Workers API.
const (
	// codeScriptNotFound is what the scripts endpoints answer for a Worker
	// that does not exist; wrangler treats it as "not deployed yet".
	codeScriptNotFound = 10007
	// codeServiceNotFound is what /workers/services/{name} answers for a
	// Worker that does not exist ("workers.api.error.service_not_found");
	// wrangler treats it as a first deploy.
	codeServiceNotFound = 10090
	// codeScriptInvalid is the code of an upload Cloudflare cannot accept
	// (wrangler maps 10021 to its script validation help). The messages the
	// fake sends with it are its own (unverified).
	codeScriptInvalid = 10021
	// codeDeploymentInvalid answers a workerDeployment whose versions are unknown
	// or whose percentages do not add up to 100.
	codeDeploymentInvalid = 10210
)

const (
	msgScriptNotFound  = "This Worker does not exist on your account."
	msgServiceNotFound = "workers.api.error.service_not_found"
)

// ScriptInfo describes a stored Worker as a test sees it.
type ScriptInfo struct {
	Name string
	// Tag is the Worker's immutable id.
	Tag string
	// MainModule and CompatibilityDate are those of the deployed version;
	// Modules maps each of its module names to its content. All three are
	// empty for a Worker uploaded as a bare script body.
	MainModule        string
	CompatibilityDate string
	Modules           map[string]string
	// Vars maps the deployed version's plain-text variables (wrangler's
	// "vars") to their values; nil when it has none.
	Vars map[string]string
	// Secrets lists the names of the Worker's secrets, sorted.
	Secrets []string
	// WorkersDev and PreviewsEnabled are the Worker's workers.dev switches.
	WorkersDev      bool
	PreviewsEnabled bool
	// Versions and Deployments count what was uploaded and deployed.
	Versions    int
	Deployments int
	// LastDeployedFrom is "wrangler" when wrangler uploaded the deployed
	// version, "api" for any other client.
	LastDeployedFrom string
}

// Scripts lists the names of an account's Workers, sorted; nil when the
// account does not exist.
func (s *Server) Scripts(accountID string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.accounts[accountID]
	if a == nil {
		return nil
	}
	return slices.Sorted(maps.Keys(a.scripts))
}

// Script describes one of an account's Workers.
func (s *Server) Script(accountID, name string) (ScriptInfo, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.accounts[accountID]
	if a == nil || a.scripts[name] == nil {
		return ScriptInfo{}, false
	}
	w := s.worker(a.scripts[name])
	info := ScriptInfo{
		Name: name, Tag: w.tag, WorkersDev: w.workersDev, PreviewsEnabled: w.previews,
		Versions: len(w.versions), Deployments: len(w.deployments), LastDeployedFrom: w.lastDeployedFrom(),
	}
	if v := w.live(); v != nil {
		info.MainModule, info.CompatibilityDate = v.mainModule, v.compatibilityDate
		info.Modules = map[string]string{}
		for _, m := range v.modules {
			info.Modules[m.name] = string(m.content)
		}
		var bs []struct{ Name, Type, Text string }
		_ = json.Unmarshal(v.bindings, &bs)
		for _, b := range bs {
			if b.Type == "plain_text" {
				if info.Vars == nil {
					info.Vars = map[string]string{}
				}
				info.Vars[b.Name] = b.Text
			}
		}
	}
	if len(w.secrets) > 0 {
		info.Secrets = slices.Sorted(maps.Keys(w.secrets))
	}
	return info, true
}

// WorkersSubdomain is the account's workers.dev subdomain, e.g.
// "example-account" for Workers at <name>.example-account.workers.dev;
// empty when the account does not exist.
func (s *Server) WorkersSubdomain(accountID string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if a := s.accounts[accountID]; a != nil {
		return s.workers().subdomain(a)
	}
	return ""
}

// workersState is the Workers state beyond the account's script list
// (world.go's script): versions, deployments, workers.dev switches and the
// accounts' subdomains. Like the rest of the world it is only touched under
// s.mu.
type workersState struct {
	subdomains map[string]string // account id -> workers.dev subdomain
	workers    map[*script]*worker
}

func (s *Server) workers() *workersState { return &s.workersState }

var notSubdomain = regexp.MustCompile(`[^a-z0-9]+`)

// subdomain is the account's workers.dev subdomain: every account of the
// fake has one, named after the account.
func (ws *workersState) subdomain(a *account) string {
	if sd, ok := ws.subdomains[a.ID]; ok {
		return sd
	}
	sd := strings.Trim(notSubdomain.ReplaceAllString(strings.ToLower(a.Name), "-"), "-")
	if sd == "" || len(sd) > 63 {
		sd = a.ID
	}
	ws.subdomains[a.ID] = sd
	return sd
}

// worker is a Worker's versioned state.
type worker struct {
	tag         string
	versions    []*workerVersion    // oldest first
	deployments []*workerDeployment // oldest first
	workersDev  bool
	previews    bool
	settings    workerSettings
	// secrets maps each secret's name to its binding type (secret_text or
	// secret_key). Secrets belong to the Worker, not to one version: an
	// upload that binds a secret sets it, and later uploads that do not
	// name it keep it, as secrets set with `wrangler secret put` survive a
	// deploy (unverified how Cloudflare treats an upload that omits one).
	secrets map[string]string
}

type workerVersion struct {
	id                 string // a UUID, as Cloudflare's version ids are
	number             int
	createdOn          time.Time
	source             string // "wrangler" or "api"
	mainModule         string // or the service-worker body part
	modules            []workerModule
	bindings           json.RawMessage // as uploaded in the metadata
	compatibilityDate  string
	compatibilityFlags []string
	etag               string
	size               int
}

type workerModule struct {
	name, contentType string
	content           []byte
}

type workerDeployment struct {
	id        string
	createdOn time.Time
	source    string
	message   string
	trigger   string // "upload" for a script upload, "workerDeployment" for POST deployments
	versions  []workerShare
}

type workerShare struct {
	VersionID  string  `json:"version_id"`
	Percentage float64 `json:"percentage"`
}

// workerSettings are the settings that are not part of a version.
type workerSettings struct {
	Logpush       bool            `json:"logpush"`
	Observability json.RawMessage `json:"observability"`
	Tags          []string        `json:"tags"`
	TailConsumers json.RawMessage `json:"tail_consumers"`
}

// worker returns sc's state, creating it for a script the fake stored
// without one (the seeded "hello", or a bare-body upload).
func (s *Server) worker(sc *script) *worker {
	ws := s.workers()
	w := ws.workers[sc]
	if w == nil {
		w = &worker{tag: newID()}
		ws.workers[sc] = w
	}
	return w
}

// live is the version serving all traffic: the one with the largest share
// in the latest workerDeployment, nil before any.
func (w *worker) live() *workerVersion {
	if len(w.deployments) == 0 {
		return nil
	}
	var best workerShare
	for _, vs := range w.deployments[len(w.deployments)-1].versions {
		if vs.Percentage > best.Percentage {
			best = vs
		}
	}
	return w.version(best.VersionID)
}

func (w *worker) version(id string) *workerVersion {
	for _, v := range w.versions {
		if v.id == id {
			return v
		}
	}
	return nil
}

func (w *worker) lastDeployedFrom() string {
	if v := w.live(); v != nil {
		return v.source
	}
	return "api"
}

// clientSource is how Cloudflare labels the client of an upload: wrangler
// identifies itself in its User-Agent; every other client counts as "api".
// (How Cloudflare tells them apart is not documented; unverified.)
func clientSource(r *http.Request) string {
	if strings.HasPrefix(r.UserAgent(), "wrangler/") {
		return "wrangler"
	}
	return "api"
}

// pathScript returns the path's Worker of account a, answering notFound's code
// when there is none.
// accountScript is the path's script in the path's account, or nil after answering the error.
func (c *call) accountScript() *script {
	a := c.account()
	if a == nil {
		return nil
	}
	return c.pathScript(a, codeScriptNotFound, msgScriptNotFound)
}

func (c *call) pathScript(a *account, code int, msg string) *script {
	sc := a.scripts[c.r.PathValue("script_name")]
	if sc == nil {
		writeErr(c.w, http.StatusNotFound, code, msg)
	}
	return sc
}

// uploadScript is PUT /accounts/{account_id}/workers/scripts/{script_name}.
// A multipart body (metadata plus modules, as wrangler and cloudflare-go
// send it) uploads a new version and deploys it to all traffic; any other
// body is stored as a bare script, as before this file existed.
func (c *call) uploadScript() {
	mediaType, params, _ := mime.ParseMediaType(c.r.Header.Get("Content-Type"))
	if mediaType != "multipart/form-data" {
		a := c.account()
		if a == nil {
			return
		}
		c.putScript()
		if sc := a.scripts[c.r.PathValue("script_name")]; sc != nil {
			// The bare body is the whole Worker now: forget its versions.
			delete(c.s.workers().workers, sc)
		}
		return
	}
	a := c.account()
	if a == nil {
		return
	}
	up, ok := c.parseUpload(params["boundary"])
	if !ok {
		return
	}
	name := c.r.PathValue("script_name")
	now := c.now.UTC()
	sc := a.scripts[name]
	if sc == nil {
		sc = &script{name: name, createdOn: now}
		a.scripts[name] = sc
	}
	w := c.s.worker(sc)
	v := w.addVersion(up, c.now, clientSource(c.r))
	w.deployments = append(w.deployments, &workerDeployment{
		id: workersUUID(), createdOn: now, source: v.source, trigger: "upload", message: up.message,
		versions: []workerShare{{VersionID: v.id, Percentage: 100}},
	})
	sc.etag, sc.size, sc.modifiedOn = v.etag, v.size, now
	writeResult(c.w, scriptUploadJSON(sc, w, v))
}

// scriptUpload is a parsed multipart Worker upload.
type scriptUpload struct {
	mainModule         string
	compatibilityDate  string
	compatibilityFlags []string
	bindings           json.RawMessage
	message            string
	modules            []workerModule
}

// scriptMetadata is the part of the metadata the fake keeps.
type scriptMetadata struct {
	MainModule         string            `json:"main_module"`
	BodyPart           string            `json:"body_part"`
	CompatibilityDate  string            `json:"compatibility_date"`
	CompatibilityFlags []string          `json:"compatibility_flags"`
	Bindings           json.RawMessage   `json:"bindings"`
	Annotations        map[string]string `json:"annotations"`
}

// parseUpload reads a multipart upload: a "metadata" part holding JSON and
// one part per module. A module is named by its part's filename, as
// Cloudflare documents ("referenced ... by filename"), or by the form name
// when the part has no filename. It answers 400 itself when the upload is
// unusable.
func (c *call) parseUpload(boundary string) (scriptUpload, bool) {
	var up scriptUpload
	fail := func(code int, msg string) (scriptUpload, bool) {
		writeErr(c.w, http.StatusBadRequest, code, msg)
		return scriptUpload{}, false
	}
	if boundary == "" {
		return fail(codeInvalidRequest, "multipart/form-data without a boundary")
	}
	var meta []byte
	haveMeta := false
	mr := multipart.NewReader(c.r.Body, boundary)
	for {
		p, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fail(codeInvalidRequest, "Malformed multipart body: "+err.Error())
		}
		data, err := io.ReadAll(p)
		if err != nil {
			return fail(codeInvalidRequest, "Malformed multipart body: "+err.Error())
		}
		if p.FormName() == "metadata" {
			meta, haveMeta = data, true
			continue
		}
		// Not p.FileName(): it drops directories, and a module's name may
		// have them ("lib/util.js").
		_, disp, _ := mime.ParseMediaType(p.Header.Get("Content-Disposition"))
		name := disp["filename"]
		if name == "" {
			name = p.FormName()
		}
		up.modules = append(up.modules, workerModule{name: name, contentType: p.Header.Get("Content-Type"), content: data})
	}
	// Unverified: the codes and wording of the answers below are the fake's.
	if !haveMeta {
		return fail(codeScriptInvalid, "Missing metadata part in the multipart upload")
	}
	var md scriptMetadata
	if err := json.Unmarshal(meta, &md); err != nil {
		return fail(codeMalformedJSON, msgMalformedJSON)
	}
	up.mainModule = md.MainModule
	if up.mainModule == "" {
		up.mainModule = md.BodyPart
	}
	if up.mainModule == "" {
		return fail(codeScriptInvalid, "metadata must name the Worker's entry point in main_module or body_part")
	}
	if !slices.ContainsFunc(up.modules, func(m workerModule) bool { return m.name == up.mainModule }) {
		return fail(codeScriptInvalid, fmt.Sprintf("No such module %q.", up.mainModule))
	}
	up.compatibilityDate, up.compatibilityFlags, up.bindings = md.CompatibilityDate, md.CompatibilityFlags, md.Bindings
	up.message = md.Annotations["workers/message"]
	return up, true
}

func (w *worker) addVersion(up scriptUpload, now time.Time, source string) *workerVersion {
	h := sha256.New()
	size := 0
	for _, m := range up.modules {
		fmt.Fprintf(h, "%s\x00%s\x00%d\x00", m.name, m.contentType, len(m.content))
		h.Write(m.content)
		size += len(m.content)
	}
	v := &workerVersion{
		id: workersUUID(), number: len(w.versions) + 1, createdOn: now.UTC(), source: source,
		mainModule: up.mainModule, modules: up.modules, bindings: up.bindings,
		compatibilityDate: up.compatibilityDate, compatibilityFlags: up.compatibilityFlags,
		etag: hex.EncodeToString(h.Sum(nil)), size: size,
	}
	w.versions = append(w.versions, v)
	w.keepSecrets(up.bindings)
	return v
}

// secretTypes are the binding types that hold secrets.
var secretTypes = []string{"secret_text", "secret_key"}

// keepSecrets records the secrets an upload binds.
func (w *worker) keepSecrets(bindings json.RawMessage) {
	var bs []struct{ Name, Type string }
	if json.Unmarshal(bindings, &bs) != nil {
		return
	}
	for _, b := range bs {
		if b.Name != "" && slices.Contains(secretTypes, b.Type) {
			if w.secrets == nil {
				w.secrets = map[string]string{}
			}
			w.secrets[b.Name] = b.Type
		}
	}
}

// publicBindings is what the API shows of uploaded bindings: a secret's
// name and type, never its value.
func publicBindings(raw json.RawMessage) json.RawMessage {
	var bs []map[string]any
	if json.Unmarshal(raw, &bs) != nil {
		return rawOrEmpty(raw)
	}
	for _, b := range bs {
		if t, _ := b["type"].(string); slices.Contains(secretTypes, t) {
			for k := range b {
				if k != "name" && k != "type" {
					delete(b, k)
				}
			}
		}
	}
	out, err := json.Marshal(bs)
	if err != nil || bs == nil {
		return json.RawMessage("[]")
	}
	return out
}

// secretOut is one entry of GET .../secrets.
type secretOut struct {
	Name string `json:"name"`
	Type string `json:"type"`
}

// listScriptSecrets is GET .../workers/scripts/{script_name}/secrets: the
// names and types of the Worker's secrets, never their values.
func (c *call) listScriptSecrets() {
	sc := c.accountScript()
	if sc == nil {
		return
	}
	w := c.s.worker(sc)
	out := make([]secretOut, 0, len(w.secrets))
	for _, name := range slices.Sorted(maps.Keys(w.secrets)) {
		out = append(out, secretOut{Name: name, Type: w.secrets[name]})
	}
	writeResult(c.w, out)
}

// startupTimeMs is what the fake reports as the Worker's startup time: it
// runs no code, so any small number will do.
const startupTimeMs = 1

// scriptUploadOut is workers_script-response-upload, plus deployment_id:
// not in the OpenAPI schema, but sent by Cloudflare and read by wrangler
// as the new version's id.
type scriptUploadOut struct {
	ID                 string          `json:"id"`
	Tag                string          `json:"tag"`
	Etag               string          `json:"etag"`
	Handlers           []string        `json:"handlers"`
	NamedHandlers      []any           `json:"named_handlers"`
	CompatibilityDate  string          `json:"compatibility_date,omitempty"`
	CompatibilityFlags []string        `json:"compatibility_flags"`
	CreatedOn          string          `json:"created_on"`
	ModifiedOn         string          `json:"modified_on"`
	HasAssets          bool            `json:"has_assets"`
	HasModules         bool            `json:"has_modules"`
	LastDeployedFrom   string          `json:"last_deployed_from"`
	Logpush            bool            `json:"logpush"`
	Tags               []string        `json:"tags"`
	TailConsumers      json.RawMessage `json:"tail_consumers"`
	UsageModel         string          `json:"usage_model"`
	StartupTimeMs      int             `json:"startup_time_ms"`
	DeploymentID       string          `json:"deployment_id"`
}

func scriptUploadJSON(sc *script, w *worker, v *workerVersion) scriptUploadOut {
	return scriptUploadOut{
		ID: sc.name, Tag: w.tag, Etag: v.etag, Handlers: []string{"fetch"}, NamedHandlers: []any{},
		CompatibilityDate: v.compatibilityDate, CompatibilityFlags: orEmpty(v.compatibilityFlags),
		CreatedOn: sc.createdOn.Format(time.RFC3339Nano), ModifiedOn: sc.modifiedOn.Format(time.RFC3339Nano),
		HasModules: v.hasModules(), LastDeployedFrom: w.lastDeployedFrom(), Logpush: w.settings.Logpush,
		Tags: orEmpty(w.settings.Tags), TailConsumers: rawOrNull(w.settings.TailConsumers),
		UsageModel: "standard", StartupTimeMs: startupTimeMs, DeploymentID: v.id,
	}
}

// hasModules reports whether the version is in the modules format: its
// entry point is an ES module.
func (v *workerVersion) hasModules() bool {
	for _, m := range v.modules {
		if m.name == v.mainModule {
			return strings.Contains(m.contentType, "module")
		}
	}
	return false
}

// uploadVersion is POST .../workers/scripts/{script_name}/versions: it
// stores a version without deploying it.
func (c *call) uploadVersion() {
	sc := c.accountScript()
	if sc == nil {
		return
	}
	mediaType, params, _ := mime.ParseMediaType(c.r.Header.Get("Content-Type"))
	if mediaType != "multipart/form-data" {
		writeErr(c.w, http.StatusBadRequest, codeInvalidRequest, "Expected a multipart/form-data upload") // unverified
		return
	}
	up, ok := c.parseUpload(params["boundary"])
	if !ok {
		return
	}
	w := c.s.worker(sc)
	v := w.addVersion(up, c.now, clientSource(c.r))
	writeResult(c.w, workerVersionJSON(w, v))
}

// workerVersionOut is a Worker version as the versions endpoints answer it.
type workerVersionOut struct {
	ID        string `json:"id"`
	Number    int    `json:"number"`
	Metadata  any    `json:"metadata"`
	Resources any    `json:"resources"`
	// StartupTimeMs is only sent on upload.
	StartupTimeMs int `json:"startup_time_ms"`
}

func workerVersionJSON(w *worker, v *workerVersion) workerVersionOut {
	ts := v.createdOn.Format(time.RFC3339Nano)
	return workerVersionOut{
		ID: v.id, Number: v.number, StartupTimeMs: startupTimeMs,
		Metadata: map[string]any{"created_on": ts, "modified_on": ts, "source": v.source, "hasPreview": false},
		Resources: map[string]any{
			"bindings": publicBindings(v.bindings),
			"script": map[string]any{
				"etag": v.etag, "handlers": []string{"fetch"}, "named_handlers": []any{}, "last_deployed_from": v.source,
			},
			"script_runtime": map[string]any{
				"compatibility_date": v.compatibilityDate, "compatibility_flags": orEmpty(v.compatibilityFlags),
				"usage_model": "standard", "limits": map[string]any{},
			},
		},
	}
}

// workerDeploymentOut is workers_deployment.
type workerDeploymentOut struct {
	ID          string            `json:"id"`
	CreatedOn   string            `json:"created_on"`
	Source      string            `json:"source"`
	Strategy    string            `json:"strategy"`
	Versions    []workerShare     `json:"versions"`
	Annotations map[string]string `json:"annotations"`
}

func workerDeploymentJSON(d *workerDeployment) workerDeploymentOut {
	ann := map[string]string{"workers/triggered_by": d.trigger}
	if d.message != "" {
		ann["workers/message"] = d.message
	}
	return workerDeploymentOut{
		ID: d.id, CreatedOn: d.createdOn.Format(time.RFC3339Nano), Source: d.source,
		Strategy: "percentage", Versions: slices.Clone(d.versions), Annotations: ann,
	}
}

// listDeployments is GET .../deployments: the latest workerDeployment first.
func (c *call) listDeployments() {
	sc := c.accountScript()
	if sc == nil {
		return
	}
	w := c.s.worker(sc)
	out := make([]workerDeploymentOut, 0, len(w.deployments))
	for _, d := range slices.Backward(w.deployments) {
		out = append(out, workerDeploymentJSON(d))
	}
	writeResult(c.w, map[string]any{"deployments": out})
}

// createDeployment is POST .../deployments: it sends traffic to uploaded
// versions in the given shares.
func (c *call) createDeployment() {
	sc := c.accountScript()
	if sc == nil {
		return
	}
	var in struct {
		Strategy    string            `json:"strategy"`
		Versions    []workerShare     `json:"versions"`
		Annotations map[string]string `json:"annotations"`
	}
	if !c.jsonBody(&in) {
		return
	}
	w := c.s.worker(sc)
	if in.Strategy != "percentage" {
		writeErr(c.w, http.StatusBadRequest, codeDeploymentInvalid, fmt.Sprintf("Invalid workerDeployment: unknown strategy %q", in.Strategy)) // unverified wording
		return
	}
	total := 0.0
	for _, vs := range in.Versions {
		if w.version(vs.VersionID) == nil {
			writeErr(c.w, http.StatusBadRequest, codeDeploymentInvalid, "Invalid workerDeployment: Version not found: "+vs.VersionID)
			return
		}
		total += vs.Percentage
	}
	if len(in.Versions) == 0 || total != 100 {
		writeErr(c.w, http.StatusBadRequest, codeDeploymentInvalid, "Invalid workerDeployment: version percentages must sum to 100")
		return
	}
	d := &workerDeployment{
		id: workersUUID(), createdOn: c.now.UTC(), source: clientSource(c.r), trigger: "workerDeployment",
		message: in.Annotations["workers/message"], versions: slices.Clone(in.Versions),
	}
	w.deployments = append(w.deployments, d)
	if v := w.live(); v != nil {
		sc.etag, sc.size = v.etag, v.size
	}
	sc.modifiedOn = d.createdOn
	writeResult(c.w, workerDeploymentJSON(d))
}

// editScriptSettings is PATCH .../script-settings: the settings that apply
// to every version. Fields absent from the body keep their value.
func (c *call) editScriptSettings() {
	sc := c.accountScript()
	if sc == nil {
		return
	}
	var in struct {
		Logpush       *bool           `json:"logpush"`
		Observability json.RawMessage `json:"observability"`
		Tags          *[]string       `json:"tags"`
		TailConsumers json.RawMessage `json:"tail_consumers"`
	}
	if !c.jsonBody(&in) {
		return
	}
	w := c.s.worker(sc)
	if in.Logpush != nil {
		w.settings.Logpush = *in.Logpush
	}
	if in.Observability != nil {
		w.settings.Observability = in.Observability
	}
	if in.Tags != nil {
		w.settings.Tags = slices.Clone(*in.Tags)
	}
	if in.TailConsumers != nil {
		w.settings.TailConsumers = in.TailConsumers
	}
	writeResult(c.w, workerSettings{
		Logpush: w.settings.Logpush, Observability: rawOrNull(w.settings.Observability),
		Tags: orEmpty(w.settings.Tags), TailConsumers: rawOrNull(w.settings.TailConsumers),
	})
}

// getScriptSettings is GET .../workers/scripts/{script_name}/settings: the
// deployed version's settings and the unversioned ones. Cloudflare also
// accepts Workers Tail Read here; the fake, one group per endpoint, only
// Workers Scripts Read (or Write).
func (c *call) getScriptSettings() {
	sc := c.accountScript()
	if sc == nil {
		return
	}
	w := c.s.worker(sc)
	out := map[string]any{
		"bindings": json.RawMessage("[]"), "compatibility_flags": []string{}, "limits": map[string]any{},
		"logpush": w.settings.Logpush, "observability": rawOrNull(w.settings.Observability), "placement": map[string]any{},
		"tags": orEmpty(w.settings.Tags), "tail_consumers": rawOrNull(w.settings.TailConsumers), "usage_model": "standard",
	}
	if v := w.live(); v != nil {
		out["bindings"], out["compatibility_flags"] = publicBindings(v.bindings), orEmpty(v.compatibilityFlags)
		if v.compatibilityDate != "" {
			out["compatibility_date"] = v.compatibilityDate
		}
	}
	writeResult(c.w, out)
}

// getService is GET /accounts/{account_id}/workers/services/{script_name},
// the older "services" view of a Worker, which wrangler reads for the
// Worker's tag, tags and last_deployed_from. It is not in Cloudflare's API
// reference; the shape is that of wrangler's own test fixtures and the
// fields it reads (unverified beyond those).
func (c *call) getService() {
	a := c.account()
	if a == nil {
		return
	}
	sc := c.pathScript(a, codeServiceNotFound, msgServiceNotFound)
	if sc == nil {
		return
	}
	w := c.s.worker(sc)
	created, modified := sc.createdOn.Format(time.RFC3339Nano), sc.modifiedOn.Format(time.RFC3339Nano)
	scriptOut := map[string]any{
		"id": sc.name, "tag": w.tag, "etag": sc.etag, "handlers": []string{"fetch"},
		"created_on": created, "modified_on": modified, "usage_model": "standard",
		"last_deployed_from": w.lastDeployedFrom(), "tags": orEmpty(w.settings.Tags),
	}
	if v := w.live(); v != nil && v.compatibilityDate != "" {
		scriptOut["compatibility_date"] = v.compatibilityDate
	}
	env := map[string]any{"environment": "production", "created_on": created, "modified_on": modified, "script": scriptOut}
	writeResult(c.w, map[string]any{
		"id": sc.name, "created_on": created, "modified_on": modified,
		"default_environment": env,
		"environments":        []any{map[string]any{"environment": "production", "created_on": created, "modified_on": modified}},
	})
}

// getAccountSubdomain is GET /accounts/{account_id}/workers/subdomain.
func (c *call) getAccountSubdomain() {
	a := c.account()
	if a == nil {
		return
	}
	writeResult(c.w, map[string]string{"subdomain": c.s.workers().subdomain(a)})
}

type scriptSubdomainOut struct {
	Enabled         bool `json:"enabled"`
	PreviewsEnabled bool `json:"previews_enabled"`
}

// getScriptSubdomain is GET .../workers/scripts/{script_name}/subdomain. A
// Worker starts off workers.dev (unverified: what Cloudflare defaults to
// for a Worker created by an upload).
func (c *call) getScriptSubdomain() {
	sc := c.accountScript()
	if sc == nil {
		return
	}
	w := c.s.worker(sc)
	writeResult(c.w, scriptSubdomainOut{Enabled: w.workersDev, PreviewsEnabled: w.previews})
}

// setScriptSubdomain is POST .../workers/scripts/{script_name}/subdomain:
// {"enabled": bool, "previews_enabled": bool}. Without previews_enabled,
// Preview URLs follow enabled, as Cloudflare made them do in October 2025
// ("Workers Preview URL default behavior now matches your workers.dev
// setting"); wrangler leaves it out unless preview_urls is configured.
func (c *call) setScriptSubdomain() {
	sc := c.accountScript()
	if sc == nil {
		return
	}
	var in struct {
		Enabled         *bool `json:"enabled"`
		PreviewsEnabled *bool `json:"previews_enabled"`
	}
	if !c.jsonBody(&in) {
		return
	}
	if in.Enabled == nil {
		writeErr(c.w, http.StatusBadRequest, codeInvalidRequest, "enabled is required") // unverified wording and code
		return
	}
	w := c.s.worker(sc)
	w.workersDev, w.previews = *in.Enabled, *in.Enabled
	if in.PreviewsEnabled != nil {
		w.previews = *in.PreviewsEnabled
	}
	writeResult(c.w, scriptSubdomainOut{Enabled: w.workersDev, PreviewsEnabled: w.previews})
}

// jsonBody reads a JSON request body into v, answering 6007 when it is
// not JSON.
func (c *call) jsonBody(v any) bool {
	body, _ := io.ReadAll(c.r.Body)
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(v); err != nil {
		writeErr(c.w, http.StatusBadRequest, codeMalformedJSON, msgMalformedJSON)
		return false
	}
	return true
}

// workersUUID returns a random version-4 UUID, the shape of version and
// workerDeployment ids.
func workersUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

func orEmpty[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

func rawOrEmpty(m json.RawMessage) json.RawMessage {
	if len(m) == 0 || string(m) == "null" {
		return json.RawMessage("[]")
	}
	return m
}

func rawOrNull(m json.RawMessage) json.RawMessage {
	if len(m) == 0 {
		return json.RawMessage("null")
	}
	return m
}
