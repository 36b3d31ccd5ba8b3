package cfapitest

import (
	"net/http"
	"strings"
	"testing"
)

// TestStorageCalls covers the KV, D1 and R2 REST calls of wrangler's kv, d1 and r2 commands:
// each works with its group, is refused (403 / 10000) without it, and answers 404 for what does
// not exist.
func TestStorageCalls(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	ns := w.AddKVNamespace(w.Account.ID, "CACHE")
	db := w.AddD1Database(w.Account.ID, "app-db")
	acct := map[string]any{acctKey(w.Account.ID): "*"}
	all := w.issue(t, TokenSpec{Name: "all", OwnerAccount: w.Account.ID, Policies: []Policy{{Groups: []string{"Workers KV Storage Write", "D1 Read", "Workers R2 Storage Write"}, Resources: acct}}})
	none := w.issue(t, TokenSpec{Name: "none", OwnerAccount: w.Account.ID, Policies: []Policy{{Groups: []string{"Workers Scripts Write"}, Resources: acct}}})
	base := "/accounts/" + w.Account.ID
	kv := base + "/storage/kv/namespaces/" + ns + "/values/a%2Fkey"
	query := base + "/d1/database/" + db + "/query"
	object := base + "/r2/buckets/assets/objects/site/index.html"

	wantOK(t, w.do(t, defaultClient, http.MethodPut, kv, all.Secret, "hello"))
	if v, ok := w.KVValue(w.Account.ID, ns, "a/key"); !ok || string(v) != "hello" {
		t.Errorf("KV a/key = %q (%v), want hello", v, ok)
	}
	a := w.do(t, defaultClient, http.MethodGet, base+"/d1/database?per_page=10&page=1", all.Secret, nil)
	wantOK(t, a)
	if !strings.Contains(string(a.Body), `"name":"app-db"`) || !strings.Contains(string(a.Body), `"uuid":"`+db+`"`) {
		t.Errorf("D1 list: %s", a.Body)
	}
	wantOK(t, w.do(t, defaultClient, http.MethodPost, query, all.Secret, map[string]any{"sql": "CREATE TABLE t (x)"}))
	if q := w.D1Queries(w.Account.ID, db); len(q) != 1 || q[0] != "CREATE TABLE t (x)" {
		t.Errorf("D1 queries %q", q)
	}
	wantOK(t, w.do(t, defaultClient, http.MethodPut, object, all.Secret, "<p>hi</p>"))
	if v, ok := w.Object(w.Account.ID, "default", "assets", "site/index.html"); !ok || string(v) != "<p>hi</p>" {
		t.Errorf("R2 site/index.html = %q (%v)", v, ok)
	}

	for _, c := range []struct{ method, path string }{{http.MethodPut, kv}, {http.MethodPost, query}, {http.MethodPut, object}} {
		wantError(t, w.do(t, defaultClient, c.method, c.path, none.Secret, map[string]any{"sql": "SELECT 1"}), http.StatusForbidden, codeAuthError)
	}
	wantError(t, w.do(t, defaultClient, http.MethodPut, base+"/storage/kv/namespaces/"+strings.Repeat("0", 32)+"/values/k", all.Secret, "v"), http.StatusNotFound, codeKVNamespaceNotFound)
	wantError(t, w.do(t, defaultClient, http.MethodPost, base+"/d1/database/nope/query", all.Secret, map[string]any{"sql": "SELECT 1"}), http.StatusNotFound, codeD1NotFound)
	wantError(t, w.do(t, defaultClient, http.MethodPut, base+"/r2/buckets/nope/objects/k", all.Secret, "v"), http.StatusNotFound, codeR2NoSuchBucket)
	wantError(t, w.do(t, defaultClient, http.MethodPost, query, all.Secret, map[string]any{"sql": " "}), http.StatusBadRequest, codeInvalidRequest)
}
