package action

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/sethvargo/go-githubactions"

	"github.com/cfmint/cfmint/internal/cftoken"
	"github.com/cfmint/cfmint/internal/config"
)

// Swept is one token a sweep found.
type Swept struct {
	ID, Name, Status string
	IssuedOn         time.Time
	ExpiresOn        time.Time
	Reason           string // "expired" or "older than ..."
	Err              error  // set when deleting it failed
}

// SweepOptions say what a sweep takes.
type SweepOptions struct {
	Owner     cftoken.Owner
	AccountID string
	// Repo limits the sweep to tokens cfmint named for that repository; "*" takes every
	// repository's.
	Repo string
	// OlderThan also takes live tokens issued longer ago than this; 0 takes only expired ones.
	OlderThan time.Duration
	DryRun    bool
	Now       time.Time
}

// Sweep deletes the tokens cfmint minted that were left behind (a runner that died before its
// post phase; revoke: false): expired ones, which still count against the token quota until
// deleted, and optionally old ones. It recognises cfmint's tokens by the names it gives them, and
// never touches any other token.
func Sweep(ctx context.Context, c *cftoken.Client, o SweepOptions) ([]Swept, error) {
	ts, err := c.List(ctx, o.Owner, o.AccountID)
	if err != nil {
		return nil, err
	}
	prefix := config.NamePrefix
	if o.Repo != "*" {
		prefix = config.RepoNamePrefix(o.Repo)
	}
	var out []Swept
	var errs []error
	for _, t := range ts {
		if !strings.HasPrefix(t.Name, prefix) {
			continue
		}
		s := Swept{ID: t.ID, Name: t.Name, Status: t.Status, IssuedOn: t.IssuedOn, ExpiresOn: t.ExpiresOn}
		switch {
		case t.Status == "expired" || (!t.ExpiresOn.IsZero() && !t.ExpiresOn.After(o.Now)):
			s.Reason = "expired"
		case o.OlderThan > 0 && !t.IssuedOn.IsZero() && o.Now.Sub(t.IssuedOn) > o.OlderThan:
			s.Reason = "older than " + human(o.OlderThan)
		default:
			continue
		}
		if !o.DryRun {
			if err := c.Delete(ctx, o.Owner, o.AccountID, t.ID); err != nil && !errors.Is(err, cftoken.ErrNotFound) {
				s.Err = err
				errs = append(errs, err)
			}
		}
		out = append(out, s)
	}
	return out, errors.Join(errs...)
}

// sweepStep is the action's sweep mode.
func sweepStep(ctx context.Context, d Deps, a *githubactions.Action, cfg *config.Config) error {
	if cfg.SweepRepo == "" {
		return errors.New("input \"sweep-repository\": is empty and GITHUB_REPOSITORY is not set; name the repository (owner/repo) or * for every repository")
	}
	swept, err := Sweep(ctx, newClient(d, cfg.BootstrapToken), SweepOptions{
		Owner: cftoken.Owner(cfg.Owner), AccountID: cfg.AccountID, Repo: cfg.SweepRepo,
		OlderThan: cfg.SweepOlderThan, DryRun: cfg.DryRun, Now: time.Now(),
	})
	verb := "Deleted"
	if cfg.DryRun {
		verb = "Would delete (dry run)"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "### cfmint: sweep of tokens named for %s\n\n", mdEscape(cfg.SweepRepo))
	if len(swept) == 0 {
		b.WriteString("Nothing to sweep.\n")
	} else {
		b.WriteString("| Token | Name | Why | Result |\n|---|---|---|---|\n")
	}
	var ids []string
	for _, s := range swept {
		result := strings.ToLower(verb)
		if s.Err != nil {
			result = "failed: " + s.Err.Error()
		} else {
			ids = append(ids, s.ID)
		}
		// %q: a name comes from Cloudflare and could hold a line break that starts a log command.
		a.Infof("%s %s (%q): %s.", verb, s.ID, s.Name, s.Reason)
		fmt.Fprintf(&b, "| `%s` | `%s` | %s | %s |\n", s.ID, mdEscape(s.Name), s.Reason, mdEscape(result))
	}
	if len(swept) == 0 && err == nil {
		a.Infof("Nothing to sweep: no expired tokens named for %s.", cfg.SweepRepo)
	}
	a.SetOutput("swept", fmt.Sprint(len(ids)))
	a.SetOutput("swept-ids", strings.Join(ids, ","))
	if d.getenv("GITHUB_STEP_SUMMARY") != "" {
		a.AddStepSummary(b.String())
	}
	return err
}
