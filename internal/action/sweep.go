package action

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/sethvargo/go-githubactions"

	"github.com/cfmint/cfmint/internal/config"
	"github.com/cfmint/cfmint/internal/logsafe"
	"github.com/cfmint/cfmint/internal/mint"
)

// sweepStep is the action's sweep mode.
func sweepStep(ctx context.Context, d Deps, a *githubactions.Action, cfg *config.Config) error {
	if cfg.SweepRepo == "" {
		return errors.New("input \"sweep-repository\": is empty and GITHUB_REPOSITORY is not set; name the repository (owner/repo) or * for every repository")
	}
	swept, err := engine(d, a, cfg.APIBase, cfg.BootstrapToken).Sweep(ctx, mint.SweepOptions{
		Owner: cfg.Owner, AccountID: cfg.AccountID, Repo: cfg.SweepRepo,
		OlderThan: cfg.SweepOlderThan, DryRun: cfg.DryRun,
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
		// A name comes from Cloudflare, as whoever made the token chose it: it could hold a
		// command, or a line break that starts one.
		a.Infof("%s %s (%s): %s.", verb, s.ID, logsafe.Quote(s.Name), s.Reason)
		fmt.Fprintf(&b, "| `%s` | `%s` | %s | %s |\n", s.ID, mdEscape(s.Name), s.Reason, mdEscape(result))
	}
	if len(swept) == 0 && err == nil {
		a.Infof("Nothing to sweep: no expired tokens named for %s.", logsafe.String(cfg.SweepRepo))
	}
	a.SetOutput("swept", fmt.Sprint(len(ids)))
	a.SetOutput("swept-ids", strings.Join(ids, ","))
	if d.getenv("GITHUB_STEP_SUMMARY") != "" {
		a.AddStepSummary(b.String())
	}
	return err
}
