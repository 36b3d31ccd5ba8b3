//go:build js && wasm

package worker

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"syscall/js"
	"time"

	"github.com/cfmint/cfmint/internal/broker"
)

// requestTimeout bounds one request's work in Go; Workers end a request that runs longer anyway.
const requestTimeout = 60 * time.Second

// Main registers globalThis.cfmint for the JavaScript entry and waits for its calls forever:
//
//	cfmint.start({token, apiBase, policy, policyName, logLevel, rateLimit, rateReserve, store})
//	cfmint.handle(method, url, headers, body) -> Promise<{status, headers, body}>
//	cfmint.sweep() -> Promise<undefined>
//
// store(method, argsJSON) -> Promise<string> is the Durable Object's store (Store); headers are
// [name, value] pairs; bodies are Uint8Arrays.
func Main() {
	var w *Worker
	api := js.Global().Get("Object").New()
	api.Set("start", js.FuncOf(func(_ js.Value, args []js.Value) any {
		c := args[0]
		var store broker.ReplayStore // nil without the binding: New says so
		if call := jsStore(c.Get("store")); call != nil {
			store = Store{Call: call}
		}
		w = New(Config{
			BootstrapToken: str(c.Get("token")),
			APIBase:        str(c.Get("apiBase")),
			Policy:         []byte(str(c.Get("policy"))),
			PolicyName:     str(c.Get("policyName")),
			LogLevel:       str(c.Get("logLevel")),
			RateLimit:      str(c.Get("rateLimit")),
			RateReserve:    str(c.Get("rateReserve")),
			Replay:         store,
			Log:            os.Stdout, // wasm_exec.js writes it to console.log: Workers Logs
		})
		return nil
	}))
	api.Set("handle", js.FuncOf(func(_ js.Value, args []js.Value) any {
		method, url, headers, body := args[0].String(), args[1].String(), args[2], args[3]
		return promise(func() (any, error) {
			if w == nil {
				return nil, errors.New("cfmint.start was not called")
			}
			return serve(w, method, url, headers, body)
		})
	}))
	api.Set("sweep", js.FuncOf(func(_ js.Value, _ []js.Value) any {
		return promise(func() (any, error) {
			if w == nil {
				return nil, errors.New("cfmint.start was not called")
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
			defer cancel()
			return nil, w.Sweep(ctx)
		})
	}))
	js.Global().Set("cfmint", api)
	select {}
}

// str is a JavaScript string, or "" for undefined and null.
func str(v js.Value) string {
	if v.Type() != js.TypeString {
		return ""
	}
	return v.String()
}

// serve runs one request through the Worker and returns the JavaScript response object.
func serve(w *Worker, method, url string, headers, body js.Value) (any, error) {
	var b []byte
	if body.Truthy() {
		b = make([]byte, body.Get("length").Int())
		js.CopyBytesToGo(b, body)
	}
	ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
	defer cancel()
	r, err := http.NewRequestWithContext(ctx, method, url, bytes.NewReader(b))
	if err != nil {
		return nil, err
	}
	for i, n := 0, headers.Get("length").Int(); i < n; i++ {
		kv := headers.Index(i)
		r.Header.Add(kv.Index(0).String(), kv.Index(1).String())
	}
	r.ContentLength = int64(len(b))
	r.RemoteAddr = "0.0.0.0:0" // never read: the caller is CF-Connecting-IP
	rec := &recorder{header: http.Header{}, status: http.StatusOK}
	w.ServeHTTP(rec, r)
	out := js.Global().Get("Object").New()
	out.Set("status", rec.status)
	hs := js.Global().Get("Array").New()
	for k, vs := range rec.header {
		for _, v := range vs {
			hs.Call("push", js.ValueOf([]any{k, v}))
		}
	}
	out.Set("headers", hs)
	rb := js.Global().Get("Uint8Array").New(rec.body.Len())
	js.CopyBytesToJS(rb, rec.body.Bytes())
	out.Set("body", rb)
	return out, nil
}

// recorder is the response one request writes.
type recorder struct {
	header http.Header
	status int
	wrote  bool
	body   bytes.Buffer
}

func (r *recorder) Header() http.Header { return r.header }
func (r *recorder) WriteHeader(code int) {
	if !r.wrote {
		r.status, r.wrote = code, true
	}
}
func (r *recorder) Write(p []byte) (int, error) {
	r.WriteHeader(http.StatusOK)
	return r.body.Write(p)
}

// promise runs f on a goroutine of its own (a JavaScript call must not block) and returns the
// Promise of its result; an error rejects it with an Error naming it.
func promise(f func() (any, error)) js.Value {
	var exec js.Func
	exec = js.FuncOf(func(_ js.Value, args []js.Value) any {
		resolve, reject := args[0], args[1]
		go func() {
			defer exec.Release()
			v, err := f()
			if err != nil {
				reject.Invoke(js.Global().Get("Error").New(err.Error()))
				return
			}
			resolve.Invoke(v)
		}()
		return nil
	})
	return js.Global().Get("Promise").New(exec)
}

// await waits for the JavaScript promise p.
func await(ctx context.Context, p js.Value) (js.Value, error) {
	type result struct {
		v   js.Value
		err error
	}
	ch := make(chan result, 1)
	then := js.FuncOf(func(_ js.Value, args []js.Value) any {
		ch <- result{v: args[0]}
		return nil
	})
	catch := js.FuncOf(func(_ js.Value, args []js.Value) any {
		msg := "rejected"
		if len(args) > 0 {
			msg = args[0].Call("toString").String()
		}
		ch <- result{err: errors.New(msg)}
		return nil
	})
	p.Call("then", then, catch)
	select {
	case r := <-ch:
		then.Release()
		catch.Release()
		return r.v, r.err
	case <-ctx.Done():
		// The callbacks stay: the promise may still settle, and call them.
		return js.Undefined(), ctx.Err()
	}
}

// jsStore is the Durable Object's store method, reached through the entry's store binding.
func jsStore(store js.Value) func(ctx context.Context, method string, args []byte) ([]byte, error) {
	if store.Type() != js.TypeFunction {
		return nil
	}
	return func(ctx context.Context, method string, args []byte) ([]byte, error) {
		v, err := await(ctx, store.Invoke(method, string(args)))
		if err != nil {
			return nil, errors.New(strings.TrimSpace(err.Error()))
		}
		if v.Type() != js.TypeString {
			return nil, fmt.Errorf("it answered %s, not JSON", v.Type())
		}
		return []byte(v.String()), nil
	}
}
