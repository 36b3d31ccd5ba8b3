package broker

import (
	"context"
	"fmt"
	"log/slog"
)

// audit writes the one log line each mint, revoke and denial gets: who asked (issuer, subject,
// repository, run), what happened and to which token. It never holds a token, the bootstrap
// token or an ID token: the ID token's jti identifies it.
func (s *Server) audit(ctx context.Context, event string, id *Identity, kv ...any) {
	attrs := []any{"event", event}
	if id != nil {
		attrs = append(attrs, "iss", id.Issuer, "sub", id.Subject, "jti", id.JTI,
			"repository", id.Claims["repository"], "repository_id", id.Claims["repository_id"],
			"run_id", id.Claims["run_id"], "run_attempt", id.Claims["run_attempt"],
			"ref", id.Claims["ref"], "environment", id.Claims["environment"])
	}
	attrs = append(attrs, kv...)
	level := slog.LevelInfo
	if event == "denial" {
		level = slog.LevelWarn
	}
	s.o.Logger.Log(ctx, level, event, attrs...)
}

// logUI is the engine's notices as log lines.
type logUI struct {
	ctx context.Context
	l   *slog.Logger
}

func (s *Server) ui(ctx context.Context) logUI { return logUI{ctx: ctx, l: s.o.Logger} }

func (u logUI) Noticef(f string, a ...any)  { u.l.InfoContext(u.ctx, fmt.Sprintf(f, a...)) }
func (u logUI) Warningf(f string, a ...any) { u.l.WarnContext(u.ctx, fmt.Sprintf(f, a...)) }
func (u logUI) Debugf(f string, a ...any)   { u.l.DebugContext(u.ctx, fmt.Sprintf(f, a...)) }
