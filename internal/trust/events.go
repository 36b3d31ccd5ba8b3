package trust

import (
	"maps"
	"slices"
)

// privilegedEvents are GitHub events that run the default branch's workflow with the
// repository's secrets and permissions, ID tokens included, while someone outside the repository
// chose what the job works on: a fork's pull request (whose code such a workflow often checks
// out), a comment, an issue or a wiki page anyone may write. GitHub puts the default branch in
// their ref, so a rule pinned to refs/heads/main matches them. A rule trusts them only when it
// names event_name.
var privilegedEvents = map[string]string{
	"pull_request_target":         "runs with the base repository's secrets for a pull request from any fork",
	"workflow_run":                "runs with the repository's secrets after another workflow, which a fork's pull request may have started",
	"issue_comment":               "runs with the repository's secrets for a comment anyone can write",
	"pull_request_review_comment": "runs for a review comment anyone can write",
	"pull_request_review":         "runs for a review anyone can submit",
	"issues":                      "runs with the repository's secrets for an issue anyone can open or edit",
	"discussion":                  "runs with the repository's secrets for a discussion anyone can open",
	"discussion_comment":          "runs with the repository's secrets for a comment anyone can write",
	"gollum":                      "runs with the repository's secrets for a wiki edit anyone may be able to make",
	"fork":                        "runs with the repository's secrets whenever anyone forks it",
	"watch":                       "runs with the repository's secrets whenever anyone stars it",
}

// PrivilegedEvents are the event_name values a rule trusts only when it names event_name, sorted.
func PrivilegedEvents() []string { return slices.Sorted(maps.Keys(privilegedEvents)) }

// privileged says why the token's event is one a rule must name, or "".
func privileged(c Claims) (event, why string) {
	ev, ok := c["event_name"]
	if !ok {
		return "", ""
	}
	return ev, privilegedEvents[ev]
}
