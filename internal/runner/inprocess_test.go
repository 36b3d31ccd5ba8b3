package runner

import (
	"bytes"
	"context"
	"io"
	"strings"
	"testing"
)

func TestInProcess(t *testing.T) {
	t.Parallel()
	var gotArgv0 string
	exe := InProcess(func(_ context.Context, argv0 string, lookup func(string) (string, bool), stdout io.Writer) (int, bool) {
		gotArgv0 = argv0
		if argv0 != "/main" {
			return 0, false
		}
		v, ok := lookup("A")
		_, home := lookup("HOME")
		io.WriteString(stdout, v)
		if !ok || home {
			return 2, true
		}
		return 3, true
	})
	var out bytes.Buffer
	code, err := exe(context.Background(), "/main", nil, []string{"A=b=c", "NOEQUALS"}, &out, io.Discard)
	if err != nil || code != 3 || out.String() != "b=c" || gotArgv0 != "/main" {
		t.Errorf("main: code %d, err %v, stdout %q, argv0 %q; want 3, nil, \"b=c\", /main", code, err, out.String(), gotArgv0)
	}
	code, err = exe(context.Background(), "/other", nil, nil, &out, io.Discard)
	if err == nil || code != -1 || !strings.Contains(err.Error(), "/other") {
		t.Errorf("other: code %d, err %v; want -1 and an error naming /other", code, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	gotArgv0 = ""
	if code, err := exe(ctx, "/main", nil, nil, &out, io.Discard); err == nil || code != -1 || gotArgv0 != "" {
		t.Errorf("cancelled: code %d, err %v, started %v; want -1, an error, not started", code, err, gotArgv0 != "")
	}
}
