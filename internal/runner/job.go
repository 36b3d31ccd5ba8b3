package runner

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
)

// Executor runs one phase of the container: argv0 is the entrypoint path as
// written in action.yml (e.g. "/cfmint-post"), env the full environment
// (KEY=VALUE) that the container gets, stdout/stderr the container's streams.
// It returns the exit code; an error means the container could not run.
type Executor func(ctx context.Context, argv0 string, args []string, env []string, stdout, stderr io.Writer) (exitCode int, err error)

// JobOptions configures a Job.
type JobOptions struct {
	// Dir holds the file-command files (a fresh directory per phase) and the
	// container's HOME. Required.
	Dir string
	// Env is the job's starting environment: the GitHub context variables
	// (GITHUB_ACTIONS, GITHUB_REPOSITORY, GITHUB_RUN_ID, RUNNER_DEBUG, ...)
	// and workflow/job env: (CLOUDFLARE_API_BASE_URL, ...). Its GITHUB_* and
	// RUNNER_* variables stand for the runner's context and win over step
	// env: and GITHUB_ENV, as they do on the runner.
	Env map[string]string
	// Exec runs the container. Required.
	Exec Executor
	// Action is the parsed action.yml. Required.
	Action *Action
	// Secrets are masked from the start of the job, as the runner masks every
	// value of the secrets context (each line of a multi-line secret too).
	Secrets []string
	// Log, when set, receives each web-log line as it is produced, so the
	// demo can show the run live.
	Log io.Writer
	// IDTokens, when set, gives the job `permissions: id-token: write`:
	// every phase gets ACTIONS_ID_TOKEN_REQUEST_URL and the (masked)
	// ACTIONS_ID_TOKEN_REQUEST_TOKEN of an endpoint IDTokens opens for the
	// job. When nil, as for a job without the permission or a pull request
	// from a fork, neither variable is set.
	IDTokens IDTokenIssuer
	// IDTokenClaims are claims of the job's ID tokens that the GitHub
	// context variables do not give, such as environment (the job's
	// environment:) or enterprise; they win over the context's.
	IDTokenClaims map[string]string
}

// IDTokenIssuer opens a job's ID-token request endpoint, as GitHub does for
// a job with `permissions: id-token: write`. It returns the endpoint's URL,
// ending in ?api-version=2.0 like the runner's, and the bearer token it
// takes; each token it answers with carries the claims claims() returns at
// the time of the request. *oidctest.Issuer is one.
type IDTokenIssuer interface {
	IDTokenEndpoint(claims func() map[string]string) (url, requestToken string)
}

// Job is one job on one runner: a temp dir holding the file-command files,
// the job's environment (GitHub context variables plus what earlier steps
// exported through GITHUB_ENV), its masks and its log.
type Job struct {
	opts  JobOptions
	debug bool

	mu        sync.Mutex
	env       map[string]string
	masks     []string
	maskSet   map[string]bool
	failed    bool
	cancelled bool

	// idTokenURL and idTokenRequestToken are set for a job with IDTokens.
	idTokenURL, idTokenRequestToken string

	logMu sync.Mutex
}

// NewJob starts a job. Missing required options are reported by the first
// RunMain.
func NewJob(opts JobOptions) *Job {
	j := &Job{
		opts:    opts,
		debug:   opts.Env["RUNNER_DEBUG"] == "1",
		env:     maps.Clone(opts.Env),
		maskSet: map[string]bool{},
	}
	if j.env == nil {
		j.env = map[string]string{}
	}
	for _, s := range opts.Secrets {
		j.addMask(s)
		if lines := strings.FieldsFunc(s, func(r rune) bool { return r == '\r' || r == '\n' }); len(lines) > 1 {
			for _, l := range lines {
				j.addMask(l)
			}
		}
	}
	if opts.IDTokens != nil {
		j.idTokenURL, j.idTokenRequestToken = opts.IDTokens.IDTokenEndpoint(j.idTokenClaims)
		// The runner masks the request token, as every system token.
		j.addMask(j.idTokenRequestToken)
	}
	return j
}

// idTokenContext maps the GitHub context variables onto the ID-token claims
// GitHub fills from the same context.
var idTokenContext = []struct{ env, claim string }{
	{"GITHUB_ACTOR", "actor"},
	{"GITHUB_ACTOR_ID", "actor_id"},
	{"GITHUB_BASE_REF", "base_ref"},
	{"GITHUB_EVENT_NAME", "event_name"},
	{"GITHUB_HEAD_REF", "head_ref"},
	{"GITHUB_REF", "ref"},
	{"GITHUB_REF_PROTECTED", "ref_protected"},
	{"GITHUB_REF_TYPE", "ref_type"},
	{"GITHUB_REPOSITORY", "repository"},
	{"GITHUB_REPOSITORY_ID", "repository_id"},
	{"GITHUB_REPOSITORY_OWNER", "repository_owner"},
	{"GITHUB_REPOSITORY_OWNER_ID", "repository_owner_id"},
	{"GITHUB_RUN_ATTEMPT", "run_attempt"},
	{"GITHUB_RUN_ID", "run_id"},
	{"GITHUB_RUN_NUMBER", "run_number"},
	{"GITHUB_SHA", "sha"},
	{"GITHUB_WORKFLOW", "workflow"},
	{"GITHUB_WORKFLOW_REF", "workflow_ref"},
	{"GITHUB_WORKFLOW_SHA", "workflow_sha"},
	{"RUNNER_ENVIRONMENT", "runner_environment"},
}

// idTokenClaims are the claims of the job's ID tokens: the GitHub context
// (the job's starting GITHUB_* and RUNNER_* variables, which steps cannot
// change), then IDTokenClaims. GitHub has no claim for GITHUB_JOB.
func (j *Job) idTokenClaims() map[string]string {
	claims := map[string]string{}
	for _, m := range idTokenContext {
		if v, ok := j.opts.Env[m.env]; ok {
			claims[m.claim] = v
		}
	}
	maps.Copy(claims, j.opts.IDTokenClaims)
	return claims
}

// Env returns the job environment now: the starting environment plus what
// steps exported through GITHUB_ENV.
func (j *Job) Env() map[string]string {
	j.mu.Lock()
	defer j.mu.Unlock()
	return maps.Clone(j.env)
}

// Masks returns every value the job masks, in the order they were
// registered, each once: the secrets, then each ::add-mask:: value.
func (j *Job) Masks() []string {
	j.mu.Lock()
	defer j.mu.Unlock()
	return append([]string(nil), j.masks...)
}

func (j *Job) addMask(v string) {
	if strings.TrimSpace(v) == "" {
		return
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	if !j.maskSet[v] {
		j.maskSet[v] = true
		j.masks = append(j.masks, v)
	}
}

func (j *Job) mask(s string) string {
	j.mu.Lock()
	masks := j.masks
	j.mu.Unlock()
	return maskSecrets(s, masks)
}

func (j *Job) writeLog(line string) {
	if j.opts.Log == nil {
		return
	}
	j.logMu.Lock()
	defer j.logMu.Unlock()
	io.WriteString(j.opts.Log, line+"\n")
}

// Step is one `uses:` step: its `with:` inputs, `env:` and id.
type Step struct {
	ID   string
	With map[string]string
	Env  map[string]string
}

// Phase is what one run of the container produced, as the runner sees it.
type Phase struct {
	Name     string // "main" or "post"
	ExitCode int
	// Cancelled is set when the context was done by the time the container
	// exited: the runner marks the step cancelled.
	Cancelled bool
	// Errors are the runner-side failures of the phase: the executor's
	// error, file commands or workflow commands the runner rejected. Each
	// fails the step even when the exit code is 0.
	Errors []error

	Args         []string          // the container's arguments
	ContainerEnv map[string]string // the environment the container got

	// Stdout and Stderr are raw, as the container wrote them (unmasked:
	// tests scan these for secrets).
	Stdout, Stderr string
	// Log is what the user would see in the web log: output lines in the
	// order written, each masked with the masks registered before it,
	// workflow commands processed (::add-mask:: lines hidden, ::debug:: shown
	// as ##[debug] only with RUNNER_DEBUG=1, annotations as ##[error] etc.),
	// then the runner's lines about file commands.
	Log         string
	Outputs     map[string]string // parsed GITHUB_OUTPUT (and ::set-output::)
	Env         map[string]string // GITHUB_ENV of this phase, as applied to the job
	State       map[string]string // parsed GITHUB_STATE (and ::save-state::)
	Summary     string            // GITHUB_STEP_SUMMARY contents, raw
	Annotations []Annotation
	Masks       []string          // values masked in this phase, in order
	Files       map[string][]byte // the raw file-command files, by variable name
}

// Failed reports whether the runner marks the phase's step failed.
func (p *Phase) Failed() bool {
	return p.ExitCode != 0 || len(p.Errors) > 0
}

// RunMain runs the main phase (runs.entrypoint). It returns an error and no
// phase when the phase could not be set up; when the executor fails it
// returns the phase too, because the runner would still run post.
func (j *Job) RunMain(ctx context.Context, step Step) (*Phase, error) {
	if err := j.validate(); err != nil {
		return nil, err
	}
	if j.opts.Action.Runs.Entrypoint == "" {
		return nil, errors.New("action.yml has no runs.entrypoint: Docker would use the image's ENTRYPOINT, which this emulation cannot see; set runs.entrypoint")
	}
	return j.run(ctx, step, "main", j.opts.Action.Runs.Entrypoint, nil)
}

// RunPost runs the post phase (runs.post-entrypoint) after main, with main's
// state as STATE_<name> and the job environment as it is now. It returns a
// nil phase and no error when the runner would not run post: the action has
// no post-entrypoint, main never started (main is nil), or runs.post-if
// (default always()) is false for the job's status. On the runner post
// phases run at the end of the job, in reverse step order: call RunPost
// accordingly.
func (j *Job) RunPost(ctx context.Context, step Step, main *Phase) (*Phase, error) {
	if err := j.validate(); err != nil {
		return nil, err
	}
	runs := j.opts.Action.Runs
	if runs.PostEntrypoint == "" || main == nil {
		return nil, nil
	}
	cond := runs.PostIf
	if cond == "" {
		cond = "always()"
	}
	c, err := parseStatusCondition(cond)
	if err != nil {
		return nil, fmt.Errorf("runs.post-if: %w", err)
	}
	j.mu.Lock()
	run := c.eval(j.failed, j.cancelled)
	j.mu.Unlock()
	if !run {
		return nil, nil
	}
	return j.run(ctx, step, "post", runs.PostEntrypoint, main.State)
}

// RunStep runs main and then, at once, post. Post runs on a context that
// ctx's cancellation does not reach, as the runner runs post after
// cancelling a job.
func (j *Job) RunStep(ctx context.Context, step Step) (main, post *Phase, err error) {
	main, err = j.RunMain(ctx, step)
	if main == nil {
		return nil, nil, err
	}
	post, postErr := j.RunPost(context.WithoutCancel(ctx), step, main)
	return main, post, errors.Join(err, postErr)
}

func (j *Job) validate() error {
	var errs []error
	if j.opts.Dir == "" {
		errs = append(errs, errors.New("runner: JobOptions.Dir is empty; give the job a directory for its file commands"))
	}
	if j.opts.Exec == nil {
		errs = append(errs, errors.New("runner: JobOptions.Exec is nil; give the job an Executor such as ExecBinary"))
	}
	if j.opts.Action == nil {
		errs = append(errs, errors.New("runner: JobOptions.Action is nil; give the job the parsed action.yml"))
	}
	return errors.Join(errs...)
}

// fileCommands are the file-command variables in the order the runner
// processes them after a phase.
var fileCommands = []struct{ env, context, file string }{
	{"GITHUB_PATH", "path", "add_path"},
	{"GITHUB_ENV", "env", "set_env"},
	{"GITHUB_STEP_SUMMARY", "step_summary", "step_summary"},
	{"GITHUB_STATE", "state", "save_state"},
	{"GITHUB_OUTPUT", "output", "set_output"},
}

// stepSummaryLimit is the largest GITHUB_STEP_SUMMARY the runner uploads.
const stepSummaryLimit = 1024 * 1024

func (j *Job) run(ctx context.Context, step Step, name, entrypoint string, state map[string]string) (*Phase, error) {
	a := j.opts.Action
	j.mu.Lock()
	envContext := maps.Clone(j.env)
	j.mu.Unlock()
	// The env context is the job env with the step's env: on top.
	maps.Copy(envContext, step.Env)

	inputs, warnings, err := a.resolveInputs(step.With, func(s string) (string, error) {
		return evalTemplate(s, j.lookup(envContext, nil))
	})
	if err != nil {
		return nil, err
	}
	lookup := j.lookup(envContext, inputs)
	var args []string
	if a.Runs.Args != nil {
		for i, arg := range a.Runs.Args {
			v, err := evalTemplate(arg, lookup)
			if err != nil {
				return nil, fmt.Errorf("runs.args[%d]: %w", i, err)
			}
			args = append(args, v)
		}
	} else {
		// Without runs.args the runner hands with: args to docker run's
		// command line; splitting on white space approximates that.
		for _, in := range inputs {
			if strings.EqualFold(in.name, "args") {
				args = strings.Fields(in.value)
			}
		}
	}
	runsEnv := map[string]string{}
	for k, v := range a.Runs.Env {
		if runsEnv[k], err = evalTemplate(v, lookup); err != nil {
			return nil, fmt.Errorf("runs.env.%s: %w", k, err)
		}
	}

	dir, err := os.MkdirTemp(j.opts.Dir, fmt.Sprintf("%s-%s-*", safeName(step.ID), name))
	if err != nil {
		return nil, fmt.Errorf("failed to create the file-command directory: %w", err)
	}
	home := filepath.Join(j.opts.Dir, "_github_home")
	if err := os.MkdirAll(home, 0o777); err != nil {
		return nil, fmt.Errorf("failed to create the container's HOME: %w", err)
	}
	files := map[string]string{}
	for _, fc := range fileCommands {
		files[fc.env] = filepath.Join(dir, fc.file)
		if err := os.WriteFile(files[fc.env], nil, 0o666); err != nil {
			return nil, fmt.Errorf("failed to create %s: %w", fc.env, err)
		}
	}

	// The container's environment, built in the runner's order.
	env := envContext
	for k, v := range state {
		env["STATE_"+k] = v
	}
	for _, in := range inputs {
		env[in.envName()] = in.value
	}
	for k, v := range runsEnv {
		// runs.env never overrides the job's or the step's env:.
		if _, ok := env[k]; !ok {
			env[k] = v
		}
	}
	for k, v := range j.opts.Env {
		if strings.HasPrefix(k, "GITHUB_") || strings.HasPrefix(k, "RUNNER_") {
			env[k] = v
		}
	}
	if j.idTokenURL != "" {
		env["ACTIONS_ID_TOKEN_REQUEST_URL"] = j.idTokenURL
		env["ACTIONS_ID_TOKEN_REQUEST_TOKEN"] = j.idTokenRequestToken
	}
	maps.Copy(env, files)
	if step.ID != "" {
		env["GITHUB_ACTION"] = step.ID
	}
	env["HOME"] = home
	envList := make([]string, 0, len(env))
	for k, v := range env {
		if k != "" {
			envList = append(envList, k+"="+v)
		}
	}
	sort.Strings(envList)

	phase := &Phase{
		Name:         name,
		Args:         args,
		ContainerEnv: env,
		Outputs:      map[string]string{},
		Env:          map[string]string{},
		State:        map[string]string{},
		Files:        map[string][]byte{},
	}
	r := &phaseRun{job: j, phase: phase, debug: j.debug}
	r.mu.Lock()
	for _, w := range warnings {
		r.issue("warning", w, nil)
	}
	r.mu.Unlock()

	code, execErr := j.opts.Exec(ctx, entrypoint, args, envList, r.stdout(), r.stderr())
	r.flush()
	phase.ExitCode = code
	phase.Cancelled = ctx.Err() != nil
	if execErr != nil {
		execErr = fmt.Errorf("failed to run %s: %w", entrypoint, execErr)
		phase.Errors = append(phase.Errors, execErr)
	}

	r.mu.Lock()
	j.processFiles(r, files)
	phase.Stdout, phase.Stderr = r.raw[0].String(), r.raw[1].String()
	if len(r.lines) > 0 {
		phase.Log = strings.Join(r.lines, "\n") + "\n"
	}
	r.mu.Unlock()

	j.mu.Lock()
	j.failed = j.failed || phase.Failed()
	j.cancelled = j.cancelled || phase.Cancelled
	j.mu.Unlock()
	return phase, execErr
}

// lookup resolves the ${{ }} references of action.yml values.
func (j *Job) lookup(envContext map[string]string, inputs []input) func(scope, name string) (string, error) {
	return func(scope, name string) (string, error) {
		switch scope {
		case "inputs":
			if inputs == nil {
				return "", fmt.Errorf("inputs.%s cannot be used here", name)
			}
			for _, in := range inputs {
				if strings.EqualFold(in.name, name) {
					return in.value, nil
				}
			}
			return "", nil
		case "env":
			return envContext[name], nil
		default: // github
			return j.opts.Env["GITHUB_"+strings.ToUpper(name)], nil
		}
	}
}

// processFiles reads the file-command files after the container exited, as
// FileCommandManager.ProcessFiles does whatever the exit code. A rejected
// file fails the step; the pairs before the bad line still apply.
func (j *Job) processFiles(r *phaseRun, files map[string]string) {
	p := r.phase
	for _, fc := range fileCommands {
		b, err := os.ReadFile(files[fc.env])
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			r.fileCommandFailed(fc.env, fc.context, err)
			continue
		}
		p.Files[fc.env] = b
		switch fc.env {
		case "GITHUB_STEP_SUMMARY":
			p.Summary = string(b)
			if len(b) > stepSummaryLimit {
				r.issue("error", fmt.Sprintf("$GITHUB_STEP_SUMMARY upload aborted, supports content up to a size of %dk, got %dk. For more information see: https://docs.github.com/actions/using-workflows/workflow-commands-for-github-actions#adding-a-markdown-summary", stepSummaryLimit/1024, len(b)/1024), nil)
			}
		case "GITHUB_ENV", "GITHUB_STATE", "GITHUB_OUTPUT":
			pairs, err := ParseFileCommand(b)
			for _, kv := range pairs {
				j.applyPair(r, fc.env, kv)
			}
			if err != nil {
				r.fileCommandFailed(fc.env, fc.context, err)
			}
		}
	}
}

func (j *Job) applyPair(r *phaseRun, variable string, kv FileCommandPair) {
	p := r.phase
	switch variable {
	case "GITHUB_ENV":
		if strings.EqualFold(kv.Name, "NODE_OPTIONS") {
			r.issue("error", "Can't store NODE_OPTIONS output parameter using '$GITHUB_ENV' command.", nil)
			return
		}
		p.Env[kv.Name] = kv.Value
		j.mu.Lock()
		j.env[kv.Name] = kv.Value
		j.mu.Unlock()
		r.debugf("%s='%s'", kv.Name, kv.Value)
	case "GITHUB_STATE":
		p.State[kv.Name] = kv.Value
		r.debugf("Save intra-action state %s = %s", kv.Name, kv.Value)
	case "GITHUB_OUTPUT":
		p.Outputs[kv.Name] = kv.Value
		r.debugf("Set output %s = %s", kv.Name, kv.Value)
	}
}

func (r *phaseRun) fileCommandFailed(variable, context string, err error) {
	r.issue("error", fmt.Sprintf("Unable to process file command '%s' successfully.", context), nil)
	reason := err.Error()
	var fce *FileCommandError
	if errors.As(err, &fce) {
		reason = fce.Reason
	}
	r.issue("error", reason, nil)
	r.phase.Errors = append(r.phase.Errors, fmt.Errorf("%s: %w", variable, err))
}

// safeName makes a step id usable in a directory name.
func safeName(id string) string {
	s := strings.Map(func(r rune) rune {
		if r == '-' || r == '_' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' {
			return r
		}
		return '_'
	}, id)
	if s == "" {
		return "step"
	}
	return s
}

// AppendEnv is an earlier `run:` step of the job that appends text to $GITHUB_ENV (name=value
// lines, or the heredoc form): every later step, and every later phase of a step already run,
// starts with those variables, as on the runner. NODE_OPTIONS is refused, as the runner refuses
// it; GITHUB_* and RUNNER_* names are taken but lose to the runner's context when a phase runs.
// Tests use it to play a compromised step that plants variables for the steps after it.
func (j *Job) AppendEnv(text string) error {
	pairs, err := ParseFileCommand([]byte(text))
	if err != nil {
		return fmt.Errorf("GITHUB_ENV: %w", err)
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	var refused []string
	for _, kv := range pairs {
		if strings.EqualFold(kv.Name, "NODE_OPTIONS") {
			refused = append(refused, kv.Name)
			continue
		}
		j.env[kv.Name] = kv.Value
	}
	if len(refused) > 0 {
		return fmt.Errorf("Can't store %s output parameter using '$GITHUB_ENV' command.", strings.Join(refused, ", "))
	}
	return nil
}
