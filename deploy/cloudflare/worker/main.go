//go:build js && wasm

// Command worker is the broker's WebAssembly module for Cloudflare Workers; the JavaScript
// entry deploy/cloudflare/src/index.js runs it. Build it with deploy/cloudflare/build.
package main

import "github.com/cfmint/cfmint/internal/worker"

func main() { worker.Main() }
