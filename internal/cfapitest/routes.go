package cfapitest

import "net/http"

// endpointGroups names, per endpoint, the permission group that allows it.
// Read endpoints name only the Read group: a Write group implies its Read
// twin (see groupCatalog.implied). Endpoints absent here need no group (the
// verify endpoints and the trace).
var endpointGroups = map[string]groupKey{
	"POST /user/tokens":                                   {"API Tokens Write", scopeUser},
	"GET /user/tokens":                                    {"API Tokens Read", scopeUser},
	"GET /user/tokens/{token_id}":                         {"API Tokens Read", scopeUser},
	"DELETE /user/tokens/{token_id}":                      {"API Tokens Write", scopeUser},
	"GET /user/tokens/permission_groups":                  {"API Tokens Read", scopeUser},
	"POST /accounts/{account_id}/tokens":                  {"Account API Tokens Write", scopeAccount},
	"GET /accounts/{account_id}/tokens":                   {"Account API Tokens Read", scopeAccount},
	"GET /accounts/{account_id}/tokens/{token_id}":        {"Account API Tokens Read", scopeAccount},
	"DELETE /accounts/{account_id}/tokens/{token_id}":     {"Account API Tokens Write", scopeAccount},
	"GET /accounts/{account_id}/tokens/permission_groups": {"Account API Tokens Read", scopeAccount},
	// GET /accounts needs no group of its own: it lists the accounts the
	// token holds any permission in (unverified). GET /user needs User
	// Details Read on the token's own user (unverified).
	"GET /user":                                                {"User Details Read", scopeUser},
	"GET /memberships":                                         {"Memberships Read", scopeUser},
	"GET /zones":                                               {"Zone Read", scopeZone},
	"GET /zones/{zone_id}":                                     {"Zone Read", scopeZone},
	"GET /zones/{zone_id}/dns_records":                         {"DNS Read", scopeZone},
	"POST /zones/{zone_id}/dns_records":                        {"DNS Write", scopeZone},
	"POST /zones/{zone_id}/purge_cache":                        {"Cache Purge", scopeZone},
	"GET /accounts/{account_id}/workers/scripts":               {"Workers Scripts Read", scopeAccount},
	"PUT /accounts/{account_id}/workers/scripts/{script_name}": {"Workers Scripts Write", scopeAccount},
	"GET /accounts/{account_id}/r2/buckets":                    {"Workers R2 Storage Read", scopeAccount},
	// The calls of `wrangler deploy` (workers_deploy.go). Groups as
	// Cloudflare's API reference lists them ("Accepted Permissions"): Get
	// Subdomain and Get Settings accept Workers Scripts Read or Write (Get
	// Settings also Workers Tail Read, which one group per endpoint cannot
	// say); Post Worker subdomain needs Write. Unverified: the other reads
	// are taken to need Read and the other writes Write, like their
	// documented neighbours; the "services" view is not documented at all.
	"GET /accounts/{account_id}/workers/subdomain":                               {"Workers Scripts Read", scopeAccount},
	"GET /accounts/{account_id}/workers/services/{script_name}":                  {"Workers Scripts Read", scopeAccount},
	"GET /accounts/{account_id}/workers/scripts/{script_name}/subdomain":         {"Workers Scripts Read", scopeAccount},
	"POST /accounts/{account_id}/workers/scripts/{script_name}/subdomain":        {"Workers Scripts Write", scopeAccount},
	"GET /accounts/{account_id}/workers/scripts/{script_name}/deployments":       {"Workers Scripts Read", scopeAccount},
	"GET /accounts/{account_id}/workers/scripts/{script_name}/settings":          {"Workers Scripts Read", scopeAccount},
	"POST /accounts/{account_id}/workers/scripts/{script_name}/deployments":      {"Workers Scripts Write", scopeAccount},
	"POST /accounts/{account_id}/workers/scripts/{script_name}/versions":         {"Workers Scripts Write", scopeAccount},
	"PATCH /accounts/{account_id}/workers/scripts/{script_name}/script-settings": {"Workers Scripts Write", scopeAccount},
	"GET /accounts/{account_id}/workers/scripts/{script_name}/secrets":           {"Workers Scripts Read", scopeAccount},
	// wrangler kv, d1 and r2 (storage_api.go).
	"PUT /accounts/{account_id}/storage/kv/namespaces/{namespace_id}/values/{key_name}": {"Workers KV Storage Write", scopeAccount},
	"GET /accounts/{account_id}/d1/database":                                            {"D1 Read", scopeAccount},
	"POST /accounts/{account_id}/d1/database/{database_id}/query":                       {"D1 Read", scopeAccount},
	"PUT /accounts/{account_id}/r2/buckets/{bucket_name}/objects/{object_key...}":       {"Workers R2 Storage Write", scopeAccount},
}

// routeTable lists every endpoint the fake serves.
func (s *Server) routeTable() []route {
	return []route{
		{http.MethodPost, "/user/tokens", accountsAPI, func(c *call) { c.userTokens(c.createToken) }},
		{http.MethodGet, "/user/tokens", accountsAPI, func(c *call) { c.userTokens(c.listTokens) }},
		{http.MethodGet, "/user/tokens/verify", verifyAPI, (*call).verifyUserToken},
		{http.MethodGet, "/user/tokens/permission_groups", accountsAPI, func(c *call) { c.userTokens(c.listGroups) }},
		{http.MethodGet, "/user/tokens/{token_id}", accountsAPI, func(c *call) { c.userTokens(c.getToken) }},
		{http.MethodDelete, "/user/tokens/{token_id}", accountsAPI, func(c *call) { c.userTokens(c.deleteToken) }},

		{http.MethodPost, "/accounts/{account_id}/tokens", accountsAPI, func(c *call) { c.accountTokens(c.createToken) }},
		{http.MethodGet, "/accounts/{account_id}/tokens", accountsAPI, func(c *call) { c.accountTokens(c.listTokens) }},
		{http.MethodGet, "/accounts/{account_id}/tokens/verify", verifyAPI, (*call).verifyAccountToken},
		{http.MethodGet, "/accounts/{account_id}/tokens/permission_groups", accountsAPI, func(c *call) { c.accountTokens(c.listGroups) }},
		{http.MethodGet, "/accounts/{account_id}/tokens/{token_id}", accountsAPI, func(c *call) { c.accountTokens(c.getToken) }},
		{http.MethodDelete, "/accounts/{account_id}/tokens/{token_id}", accountsAPI, func(c *call) { c.accountTokens(c.deleteToken) }},

		{http.MethodGet, "/accounts", accountsAPI, (*call).listAccounts},
		{http.MethodGet, "/user", accountsAPI, (*call).getUser},
		{http.MethodGet, "/memberships", accountsAPI, (*call).listMemberships},
		{http.MethodGet, "/zones", accountsAPI, (*call).listZones},
		{http.MethodGet, "/zones/{zone_id}", accountsAPI, (*call).getZone},
		{http.MethodGet, "/zones/{zone_id}/dns_records", productAPI, (*call).listDNSRecords},
		{http.MethodPost, "/zones/{zone_id}/dns_records", productAPI, (*call).createDNSRecord},
		{http.MethodPost, "/zones/{zone_id}/purge_cache", productAPI, (*call).purgeCache},
		{http.MethodGet, "/accounts/{account_id}/workers/scripts", workersAPI, (*call).listScripts},
		{http.MethodPut, "/accounts/{account_id}/workers/scripts/{script_name}", workersAPI, (*call).uploadScript},
		{http.MethodGet, "/accounts/{account_id}/r2/buckets", productAPI, (*call).listBuckets},
		{http.MethodGet, "/accounts/{account_id}/workers/subdomain", workersAPI, (*call).getAccountSubdomain},
		{http.MethodGet, "/accounts/{account_id}/workers/services/{script_name}", workersAPI, (*call).getService},
		{http.MethodGet, "/accounts/{account_id}/workers/scripts/{script_name}/subdomain", workersAPI, (*call).getScriptSubdomain},
		{http.MethodPost, "/accounts/{account_id}/workers/scripts/{script_name}/subdomain", workersAPI, (*call).setScriptSubdomain},
		{http.MethodGet, "/accounts/{account_id}/workers/scripts/{script_name}/deployments", workersAPI, (*call).listDeployments},
		{http.MethodGet, "/accounts/{account_id}/workers/scripts/{script_name}/settings", workersAPI, (*call).getScriptSettings},
		{http.MethodPost, "/accounts/{account_id}/workers/scripts/{script_name}/deployments", workersAPI, (*call).createDeployment},
		{http.MethodPost, "/accounts/{account_id}/workers/scripts/{script_name}/versions", workersAPI, (*call).uploadVersion},
		{http.MethodPatch, "/accounts/{account_id}/workers/scripts/{script_name}/script-settings", workersAPI, (*call).editScriptSettings},
		{http.MethodGet, "/accounts/{account_id}/workers/scripts/{script_name}/secrets", workersAPI, (*call).listScriptSecrets},
		{http.MethodPut, "/accounts/{account_id}/storage/kv/namespaces/{namespace_id}/values/{key_name}", productAPI, (*call).putKVValue},
		{http.MethodGet, "/accounts/{account_id}/d1/database", productAPI, (*call).listD1Databases},
		{http.MethodPost, "/accounts/{account_id}/d1/database/{database_id}/query", productAPI, (*call).queryD1},
		{http.MethodPut, "/accounts/{account_id}/r2/buckets/{bucket_name}/objects/{object_key...}", productAPI, (*call).putR2Object},

		{http.MethodGet, "/cdn-cgi/trace", public, (*call).trace},
	}
}
