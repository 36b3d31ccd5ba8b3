package runner

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"unicode"
)

// Annotation is an ::error::, ::warning:: or ::notice:: command, or a
// warning or error the runner itself raised for the step.
type Annotation struct {
	Level   string // "error", "warning" or "notice"
	Message string // masked, as the runner shows it
	Props   map[string]string
}

// workflowCommand is one parsed ::name props::data (or legacy ##[name]data)
// line.
type workflowCommand struct {
	name  string
	props map[string]string
	data  string
}

func (c workflowCommand) prop(key string) (string, bool) {
	// The runner keeps properties in a case-insensitive dictionary.
	for k, v := range c.props {
		if strings.EqualFold(k, key) {
			return v, true
		}
	}
	return "", false
}

// Escapes in the order the runner undoes them (ActionCommand.cs): %25 last,
// so "%250A" stays the literal text "%0A".
var (
	dataEscapes   = [][2]string{{"%0D", "\r"}, {"%0A", "\n"}, {"%25", "%"}}
	propEscapes   = [][2]string{{"%0D", "\r"}, {"%0A", "\n"}, {"%3A", ":"}, {"%2C", ","}, {"%25", "%"}}
	legacyEscapes = [][2]string{{"%3B", ";"}, {"%0D", "\r"}, {"%0A", "\n"}, {"%5D", "]"}, {"%25", "%"}}
)

func unescape(s string, mappings [][2]string) string {
	for _, m := range mappings {
		s = strings.ReplaceAll(s, m[0], m[1])
	}
	return s
}

// parseCommandV2 parses "::name k=v,k2=v2::data" the way
// ActionCommand.TryParseV2 does: leading white space is ignored, the name is
// matched case-insensitively against the registered commands, properties
// without both a name and a value are dropped.
func parseCommandV2(line string, registered func(string) bool) (workflowCommand, bool) {
	msg := strings.TrimLeftFunc(line, unicode.IsSpace)
	if !strings.HasPrefix(msg, "::") {
		return workflowCommand{}, false
	}
	end := strings.Index(msg[2:], "::")
	if end < 0 {
		return workflowCommand{}, false
	}
	end += 2
	info := msg[2:end]
	name, propsStr, hasProps := strings.Cut(info, " ")
	if !registered(name) {
		return workflowCommand{}, false
	}
	c := workflowCommand{name: name, props: map[string]string{}}
	if hasProps {
		for _, p := range strings.Split(strings.TrimSpace(propsStr), ",") {
			if k, v, ok := strings.Cut(p, "="); ok && k != "" && v != "" {
				c.props[k] = unescape(v, propEscapes)
			}
		}
	}
	c.data = unescape(msg[end+2:], dataEscapes)
	return c, true
}

// parseCommandLegacy parses the older "##[name k=v;k2=v2]data" form, which
// ActionCommand.TryParse finds anywhere in the line.
func parseCommandLegacy(line string, registered func(string) bool) (workflowCommand, bool) {
	start := strings.Index(line, "##[")
	if start < 0 {
		return workflowCommand{}, false
	}
	rb := strings.IndexByte(line[start:], ']')
	if rb < 0 {
		return workflowCommand{}, false
	}
	rb += start
	info := line[start+3 : rb]
	name, propsStr, hasProps := strings.Cut(info, " ")
	if !registered(name) {
		return workflowCommand{}, false
	}
	c := workflowCommand{name: name, props: map[string]string{}}
	if hasProps {
		for _, p := range strings.Split(propsStr, ";") {
			if k, v, ok := strings.Cut(p, "="); ok && k != "" && v != "" {
				c.props[k] = unescape(v, legacyEscapes)
			}
		}
	}
	c.data = unescape(line[rb+1:], legacyEscapes)
	return c, true
}

const (
	msgDisabledCommand   = "The `%s` command is disabled. Please upgrade to using Environment Files or opt into unsecure command execution by setting the `ACTIONS_ALLOW_UNSECURE_COMMANDS` environment variable to `true`. For more information see: https://github.blog/changelog/2020-10-01-github-actions-deprecating-set-env-and-add-path-commands/"
	msgDeprecatedCommand = "The `%s` command is deprecated and will be disabled soon. Please upgrade to using Environment Files. For more information see: https://github.blog/changelog/2022-10-11-github-actions-deprecating-save-state-and-set-output-commands/"
	msgBadStopToken      = "You cannot use a endToken that is an empty string, the string 'pause-logging', or another workflow command. For more information see: https://docs.github.com/actions/learn-github-actions/workflow-commands-for-github-actions#example-stopping-and-starting-workflow-commands or opt into insecure command execution by setting the `ACTIONS_ALLOW_UNSECURE_STOPCOMMAND_TOKENS` environment variable to `true`."
)

// commandHandler is one command extension of the runner. omitEcho commands
// are never echoed (their data may be a secret or is shown another way).
type commandHandler struct {
	omitEcho bool
	run      func(r *phaseRun, c workflowCommand) error
}

var commandHandlers = map[string]commandHandler{
	"add-mask": {omitEcho: true, run: func(r *phaseRun, c workflowCommand) error {
		if strings.TrimSpace(c.data) == "" {
			r.issue("warning", "Can't add secret mask for empty string in ##[add-mask] command.", nil)
			return nil
		}
		if r.echo {
			r.output("::add-mask::***")
		}
		r.addMask(c.data)
		return nil
	}},
	"debug": {omitEcho: true, run: func(r *phaseRun, c workflowCommand) error {
		r.debugf("%s", c.data)
		return nil
	}},
	"error":   {omitEcho: true, run: issueCommand("error")},
	"warning": {omitEcho: true, run: issueCommand("warning")},
	"notice":  {omitEcho: true, run: issueCommand("notice")},
	"group": {run: func(r *phaseRun, c workflowCommand) error {
		r.output("##[group]" + c.data)
		return nil
	}},
	"endgroup": {run: func(r *phaseRun, c workflowCommand) error {
		r.output("##[endgroup]")
		return nil
	}},
	"echo": {run: func(r *phaseRun, c workflowCommand) error {
		switch strings.ToUpper(strings.TrimSpace(c.data)) {
		case "ON":
			r.echo = true
		case "OFF":
			r.echo = false
		case "":
			return errors.New("Value cannot be null. (Parameter 'value')")
		default:
			return fmt.Errorf("Invalid echo command value. Possible values can be: 'on', 'off'. Current value is: '%s'.", c.data)
		}
		return nil
	}},
	"set-output": {run: func(r *phaseRun, c workflowCommand) error {
		name, ok := c.prop("name")
		if !ok || name == "" {
			return errors.New("Required field 'name' is missing in ##[set-output] command.")
		}
		r.issue("warning", fmt.Sprintf(msgDeprecatedCommand, "set-output"), nil)
		r.phase.Outputs[name] = c.data
		r.debugf("Set output %s = %s", name, c.data)
		return nil
	}},
	"save-state": {run: func(r *phaseRun, c workflowCommand) error {
		name, ok := c.prop("name")
		if !ok || name == "" {
			return errors.New("Required field 'name' is missing in ##[save-state] command.")
		}
		r.issue("warning", fmt.Sprintf(msgDeprecatedCommand, "save-state"), nil)
		r.phase.State[name] = c.data
		r.debugf("Save intra-action state %s = %s", name, c.data)
		return nil
	}},
	// ACTIONS_ALLOW_UNSECURE_COMMANDS is not emulated: these are always off.
	"set-env":  {run: disabledCommand("set-env")},
	"add-path": {run: disabledCommand("add-path")},
	// Problem matchers are not emulated; the commands are accepted and do nothing.
	"add-matcher":    {run: func(*phaseRun, workflowCommand) error { return nil }},
	"remove-matcher": {run: func(*phaseRun, workflowCommand) error { return nil }},
}

func issueCommand(level string) func(*phaseRun, workflowCommand) error {
	return func(r *phaseRun, c workflowCommand) error {
		r.issue(level, c.data, c.props)
		return nil
	}
}

func disabledCommand(name string) func(*phaseRun, workflowCommand) error {
	return func(*phaseRun, workflowCommand) error {
		return fmt.Errorf(msgDisabledCommand, name)
	}
}

// maskSecrets replaces every occurrence of every secret with ***, merging
// overlapping and adjacent matches into one *** as the runner's SecretMasker
// does. Encoded forms (base64, JSON, URL) that the real masker also hides are
// not emulated, so the emulated log shows more than the real one, never less.
func maskSecrets(s string, secrets []string) string {
	type span struct{ start, end int }
	var spans []span
	for _, secret := range secrets {
		if secret == "" {
			continue
		}
		for from := 0; from < len(s); {
			i := strings.Index(s[from:], secret)
			if i < 0 {
				break
			}
			spans = append(spans, span{from + i, from + i + len(secret)})
			from += i + 1
		}
	}
	if len(spans) == 0 {
		return s
	}
	sort.Slice(spans, func(i, j int) bool { return spans[i].start < spans[j].start })
	var b strings.Builder
	last := 0
	cur := spans[0]
	for _, sp := range spans[1:] {
		if sp.start <= cur.end {
			cur.end = max(cur.end, sp.end)
			continue
		}
		b.WriteString(s[last:cur.start])
		b.WriteString("***")
		last, cur = cur.end, sp
	}
	b.WriteString(s[last:cur.start])
	b.WriteString("***")
	b.WriteString(s[cur.end:])
	return b.String()
}

// phaseRun turns the container's two streams into the web log of one phase,
// line by line and in arrival order, the way the runner's OutputManager and
// ActionCommandManager do: workflow commands are processed (on stderr as well
// as stdout), everything else is printed masked with the masks known at that
// moment.
type phaseRun struct {
	job   *Job
	phase *Phase
	debug bool

	mu        sync.Mutex
	raw       [2]bytes.Buffer
	partial   [2][]byte
	afterCR   [2]bool
	lines     []string
	echo      bool
	stopped   bool
	stopToken string
}

type streamWriter struct {
	r      *phaseRun
	stream int
}

func (w streamWriter) Write(p []byte) (int, error) {
	w.r.write(w.stream, p)
	return len(p), nil
}

func (r *phaseRun) stdout() io.Writer { return streamWriter{r, 0} }
func (r *phaseRun) stderr() io.Writer { return streamWriter{r, 1} }

// write splits a stream into lines as .NET's StreamReader.ReadLine does:
// "\n", "\r\n" and a lone "\r" each end a line.
func (r *phaseRun) write(stream int, p []byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.raw[stream].Write(p)
	for _, b := range p {
		switch {
		case b == '\n' && r.afterCR[stream]:
			r.afterCR[stream] = false
		case b == '\n' || b == '\r':
			r.afterCR[stream] = b == '\r'
			line := string(r.partial[stream])
			r.partial[stream] = r.partial[stream][:0]
			r.processLine(line)
		default:
			r.afterCR[stream] = false
			r.partial[stream] = append(r.partial[stream], b)
		}
	}
}

// flush processes what the streams left without a final newline.
func (r *phaseRun) flush() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for stream := range r.partial {
		if len(r.partial[stream]) > 0 {
			line := string(r.partial[stream])
			r.partial[stream] = nil
			r.processLine(line)
		}
	}
}

func (r *phaseRun) registered(name string) bool {
	if _, ok := commandHandlers[strings.ToLower(name)]; ok {
		return true
	}
	if strings.EqualFold(name, "stop-commands") {
		return true
	}
	return r.stopped && strings.EqualFold(name, r.stopToken)
}

func (r *phaseRun) processLine(line string) {
	if r.tryCommand(line) {
		return
	}
	r.output(line)
}

// parseLine is how the runner decides whether one line is a workflow command: the ::name::
// form first, then the legacy ##[name] form anywhere in the line.
func parseLine(line string, registered func(string) bool) (workflowCommand, bool) {
	if line == "" || !(strings.Contains(line, "##[") || strings.Contains(line, "::")) {
		return workflowCommand{}, false
	}
	if c, ok := parseCommandV2(line, registered); ok {
		return c, true
	}
	return parseCommandLegacy(line, registered)
}

// FindCommand reports the first workflow command the runner would read in text, split into
// lines as the runner splits a step's output ("\n", "\r\n" and a lone "\r" each end a
// line), with commands not paused by stop-commands. Tests run every value a program prints
// through it: a value that comes out as a command could set outputs, state or masks.
func FindCommand(text string) (name string, ok bool) {
	fresh := (&phaseRun{}).registered
	for _, line := range strings.FieldsFunc(text, func(r rune) bool { return r == '\n' || r == '\r' }) {
		if c, ok := parseLine(line, fresh); ok {
			return strings.ToLower(c.name), true
		}
	}
	return "", false
}

func (r *phaseRun) tryCommand(line string) bool {
	c, ok := parseLine(line, r.registered)
	if !ok {
		return false
	}
	if r.stopped {
		if !strings.EqualFold(c.name, r.stopToken) {
			return false
		}
		r.output(line)
		r.debugf("Resume processing commands")
		r.stopped, r.stopToken = false, ""
		return true
	}
	if strings.EqualFold(c.name, "stop-commands") {
		if c.data == "" || strings.EqualFold(c.data, "pause-logging") || r.registered(c.data) {
			r.commandFailed("stop-commands", errors.New(msgBadStopToken))
			return true
		}
		r.stopped, r.stopToken = true, c.data
		// The runner hides a long token so nothing can guess it to resume.
		if len(c.data) > 6 {
			r.addMask(c.data)
		}
		r.output(line)
		r.debugf("Paused processing commands until the token you called ::stopCommands:: with is received")
		return true
	}
	h := commandHandlers[strings.ToLower(c.name)]
	if r.echo && !h.omitEcho {
		r.output(line)
	}
	if err := h.run(r, c); err != nil {
		info := line
		if h.omitEcho {
			info = c.name
		}
		r.commandFailed(info, err)
	}
	return true
}

// commandFailed logs a command the runner could not process; the step fails.
func (r *phaseRun) commandFailed(info string, err error) {
	r.issue("error", fmt.Sprintf("Unable to process command '%s' successfully.", info), nil)
	r.issue("error", err.Error(), nil)
	r.phase.Errors = append(r.phase.Errors, fmt.Errorf("workflow command %s: %w", info, err))
}

func (r *phaseRun) addMask(v string) {
	r.phase.Masks = append(r.phase.Masks, v)
	r.job.addMask(v)
}

// output writes one line to the log, masked as ExecutionContext.Write does.
func (r *phaseRun) output(line string) {
	r.log(r.job.mask(line))
}

func (r *phaseRun) log(line string) {
	r.lines = append(r.lines, line)
	r.job.writeLog(line)
}

// debugf logs each line of a debug message as ##[debug], only when step
// debug logging is on.
func (r *phaseRun) debugf(format string, args ...any) {
	if !r.debug {
		return
	}
	msg := strings.ReplaceAll(fmt.Sprintf(format, args...), "\r\n", "\n")
	for _, l := range strings.Split(msg, "\n") {
		r.output("##[debug]" + l)
	}
}

// issue records an annotation and logs it as ##[level]message, masked.
func (r *phaseRun) issue(level, msg string, props map[string]string) {
	masked := r.job.mask(msg)
	if props == nil {
		props = map[string]string{}
	}
	r.phase.Annotations = append(r.phase.Annotations, Annotation{Level: level, Message: masked, Props: props})
	r.output("##[" + level + "]" + masked)
}
