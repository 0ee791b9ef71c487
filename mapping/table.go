package mapping

import (
	"errors"
	"slices"
	"strconv"
	"time"
)

// Server is an allow-listed server as the Table sees it.
type Server struct {
	// URI is the exact ServerUri (case-sensitive).
	URI string
	// Key is the short name used in routes. Empty means "derive it": the
	// URI, escaped with EscapeKey. A key given explicitly must already be a
	// valid token/level (EscapeKey leaves it unchanged).
	Key string
}

// Config is everything New needs: the bus syntax and prefix, the
// allow-listed servers and the mapping rows, in configuration order. Error
// paths name configuration keys ("bus.prefix", "servers[1].key",
// "map[3].node").
type Config struct {
	Syntax  Syntax
	Prefix  string
	Servers []Server
	Rows    []Row
}

// Row is one [[map]] row of the configuration. A row is either a variable
// row (Node set) or a method row (Object and Method set).
type Row struct {
	// Servers lists exact ServerUris and/or globs (see isGlob); every entry
	// must match at least one allow-listed server. (key "servers")
	Servers []string
	// Node is the variable (key "node", or "browse_path" for a path).
	Node NodeRef
	// Object and Method name the method to call and the object it is called
	// on (keys "object", "method").
	Object, Method NodeRef
	// Arguments are the method's input argument types (key "arguments").
	Arguments []ValueType
	// Name is the row's name; empty means Node.DefaultName() (or
	// Method.DefaultName()). (key "name")
	Name string
	// Route is the data subject/topic template; empty means
	// "{prefix}.{server}.{name}" (NATS) or "{prefix}/{server}/{name}" (MQTT).
	// (key "subject" or "topic")
	Route string
	// CommandRoute is the command subject/topic template. Empty means the
	// data route followed by ".set" / "/set" for writable variables, and
	// "{prefix}.{server}.{name}.call" / "{prefix}/{server}/{name}/call" for
	// methods. (key "command_subject" or "command_topic")
	CommandRoute string
	// WriteOnly rows publish no data (key "publish" = false); a writable
	// write-only row needs an explicit CommandRoute.
	WriteOnly bool
	// Writable allows writes to the variable from the bus (key "writable").
	Writable bool
	Settings
}

// Settings are the monitoring and publishing settings of a row, carried
// unchanged into each of its Items.
type Settings struct {
	// Payload is the data message format (key "payload").
	Payload PayloadFormat
	// SamplingInterval of the monitored item; 0 means the subscription's
	// publishing interval, SampleFastest the server's fastest practical
	// rate. (key "sampling_interval": absent is 0 here, an explicit 0 is
	// SampleFastest)
	SamplingInterval time.Duration
	// QueueSize of the monitored item; 0 means 1. (key "queue_size")
	QueueSize uint32
	// Deadband of the data change filter (keys "deadband_type", "deadband").
	Deadband Deadband
	// QoS and Retain apply to MQTT publishes (keys "qos", "retain"; the
	// configuration fills in the bus defaults).
	QoS    QoS
	Retain bool
}

// SampleFastest as a SamplingInterval asks the server for its fastest
// practical sampling rate: OPC UA's sampling interval 0, which servers
// that sample by exception turn into "every change" (Part 4, 7.21).
const SampleFastest time.Duration = -1

// ItemKind tells variables from methods.
type ItemKind uint8

// The item kinds.
const (
	Variable ItemKind = iota + 1
	Method
)

// String returns "variable" or "method".
func (k ItemKind) String() string {
	if k == Method {
		return "method"
	}
	return "variable"
}

// Item is one row applied to one server, with every route rendered. Items
// are immutable and shared: do not modify them.
type Item struct {
	// Row is the index of the configuration row the item comes from.
	Row int
	// Kind is Variable or Method.
	Kind ItemKind
	// ServerURI and ServerKey identify the server.
	ServerURI, ServerKey string
	// Node is the variable (Kind == Variable).
	Node NodeRef
	// Object and Method name the method call (Kind == Method).
	Object, Method NodeRef
	// Arguments are the declared input argument types (Kind == Method).
	Arguments []ValueType
	// Name is the row's name (unescaped).
	Name string
	// Route is the data subject/topic; empty for write-only rows and methods.
	Route string
	// CommandRoute is where commands arrive (NATS: request subject; MQTT:
	// the "set" or "call" topic); empty when the item takes no commands.
	CommandRoute string
	// ResultRoute is where MQTT command results go (CommandRoute +
	// "/result"); empty for NATS, which replies to the request's inbox.
	ResultRoute string
	// Writable reports whether writes are allowed (Kind == Variable).
	Writable bool
	Settings

	prelude []byte // `{"server":…,"node":…,"name":…,"value":`
}

// Table is the immutable routing table built from the configuration. It is
// safe for concurrent use.
type Table struct {
	syntax   Syntax
	prefix   string
	servers  []Server
	byServer map[string]*serverEntry
	commands map[string]*Item
}

type serverEntry struct {
	server Server
	status string
	items  []*Item
}

// PathError is a configuration error at a key path such as "map[3].node".
// When Err is a *ValueError the message reads
// `map[3].node "ns=2;x=7": unknown identifier type "x"`, otherwise
// `map[3]: <reason>`.
type PathError struct {
	Path string
	Err  error
}

// Error implements error.
func (e *PathError) Error() string {
	var ve *ValueError
	if errors.As(e.Err, &ve) && ve == e.Err {
		return e.Path + " " + e.Err.Error()
	}
	return e.Path + ": " + e.Err.Error()
}

// Unwrap returns the underlying error.
func (e *PathError) Unwrap() error { return e.Err }

// routeOwner remembers who rendered a route, for duplicate reports.
type routeOwner struct {
	desc string
}

type builder struct {
	cfg      Config
	prefixOK bool // routes are only rendered with a valid prefix
	t        *Table
	errs     []error
	seen     map[string]routeOwner
	once     map[string]bool // de-duplicates identical messages
	keyErr   map[int]bool
}

func (b *builder) fail(path string, err error) {
	pe := &PathError{Path: path, Err: err}
	msg := pe.Error()
	if b.once[msg] {
		return
	}
	b.once[msg] = true
	b.errs = append(b.errs, pe)
}

func (b *builder) failf(path string, sentinel error, reason string) {
	b.fail(path, &reasonError{reason: reason, err: sentinel})
}

// reasonError is a message that wraps a sentinel without repeating its text.
type reasonError struct {
	reason string
	err    error
}

func (e *reasonError) Error() string { return e.reason }
func (e *reasonError) Unwrap() error { return e.err }

// New builds the Table. It checks everything at once and returns every
// problem as a *PathError joined with errors.Join: malformed servers and
// keys, rows that match no server, contradictory rows, bad templates,
// routes the bus would refuse, and duplicate routes (between rows, and with
// the status routes "<prefix>.status.<key>").
func New(cfg Config) (*Table, error) {
	b := &builder{
		cfg:    cfg,
		t:      &Table{syntax: cfg.Syntax, prefix: cfg.Prefix, byServer: map[string]*serverEntry{}, commands: map[string]*Item{}},
		seen:   map[string]routeOwner{},
		once:   map[string]bool{},
		keyErr: map[int]bool{},
	}
	if cfg.Syntax != NATS && cfg.Syntax != MQTT {
		b.failf("bus.kind", ErrInvalidRoute, "unknown bus syntax "+cfg.Syntax.String())
		return nil, errors.Join(b.errs...)
	}
	if err := ValidateRoute(cfg.Syntax, cfg.Prefix); err != nil {
		// Every route starts with the prefix: report it once, not per route.
		b.fail("bus.prefix", err)
	} else {
		b.prefixOK = true
	}
	b.addServers()
	for i := range cfg.Rows {
		b.addRow(i)
	}
	if len(b.errs) > 0 {
		return nil, errors.Join(b.errs...)
	}
	return b.t, nil
}

func (b *builder) addServers() {
	syn := b.cfg.Syntax
	keys := map[string]int{}
	for i, s := range b.cfg.Servers {
		path := "servers[" + strconv.Itoa(i) + "]"
		if s.URI == "" {
			b.failf(path+".uri", ErrUnknownServer, "server URI is empty")
			continue
		}
		if _, dup := b.t.byServer[s.URI]; dup {
			b.fail(path+".uri", valueErr(ErrUnknownServer, s.URI, "server listed twice"))
			continue
		}
		key := s.Key
		switch {
		case key == "":
			key = EscapeKey(syn, s.URI)
		case EscapeKey(syn, key) != key:
			b.fail(path+".key", valueErr(ErrInvalidRoute, key, "not a valid "+tokenNoun(syn)+" for "+syn.String()+"; it would need escaping as "+quote(EscapeKey(syn, key))))
			b.keyErr[i] = true
		}
		if j, dup := keys[key]; dup {
			b.fail(path+".key", valueErr(ErrDuplicateRoute, key, "same key as servers["+strconv.Itoa(j)+"]"))
			b.keyErr[i] = true
		}
		keys[key] = i
		srv := Server{URI: s.URI, Key: key}
		e := &serverEntry{server: srv}
		b.t.byServer[s.URI] = e
		b.t.servers = append(b.t.servers, srv)
		if b.keyErr[i] || !b.prefixOK {
			continue
		}
		e.status = b.cfg.Prefix + string(syn.Separator()) + "status" + string(syn.Separator()) + key
		if err := ValidateRoute(syn, e.status); err != nil {
			b.fail(path+".key", err)
			continue
		}
		b.claim(e.status, routeOwner{desc: "the status " + syn.noun() + " of server " + quote(s.URI)}, path+".key")
	}
}

// claim registers route for owner, reporting a duplicate at path.
func (b *builder) claim(route string, owner routeOwner, path string) bool {
	if prev, dup := b.seen[route]; dup {
		b.fail(path, valueErr(ErrDuplicateRoute, route, "duplicate route: also "+prev.desc))
		return false
	}
	b.seen[route] = owner
	return true
}

func (b *builder) addRow(i int) {
	row := b.cfg.Rows[i]
	syn := b.cfg.Syntax
	path := "map[" + strconv.Itoa(i) + "]"
	routeKey, cmdKey := "subject", "command_subject"
	if syn == MQTT {
		routeKey, cmdKey = "topic", "command_topic"
	}
	errsBefore := len(b.errs)

	isMethod := !row.Object.IsZero() || !row.Method.IsZero()
	switch {
	case !row.Node.IsZero() && isMethod:
		b.failf(path, ErrInvalidRow, "set either node/browse_path (a variable) or object and method (a method), not both")
	case row.Node.IsZero() && !isMethod:
		b.failf(path, ErrInvalidRow, "needs node or browse_path (a variable), or object and method (a method)")
	case isMethod && row.Object.IsZero():
		b.failf(path+".object", ErrInvalidRow, "a method row needs the object the method is called on")
	case isMethod && row.Method.IsZero():
		b.failf(path+".method", ErrInvalidRow, "a method row needs the method")
	}
	if isMethod {
		if row.Writable {
			b.failf(path+".writable", ErrInvalidRow, "writable applies to variables; a method row is callable because it is declared")
		}
		if row.WriteOnly {
			b.failf(path+".publish", ErrInvalidRow, "publish applies to variables; a method row publishes nothing")
		}
		if row.Route != "" {
			b.failf(path+"."+routeKey, ErrInvalidRow, "a method row publishes no data; set "+cmdKey+" for its call route")
		}
	} else {
		if len(row.Arguments) > 0 {
			b.failf(path+".arguments", ErrInvalidRow, "arguments apply to method rows")
		}
		switch {
		case row.WriteOnly && !row.Writable:
			b.failf(path+".publish", ErrInvalidRow, "publish = false on a row that is not writable: the row would do nothing")
		case row.Writable && row.WriteOnly && row.CommandRoute == "":
			b.failf(path+".writable", ErrInvalidRow, "writable row without a command route: with publish = false, set "+cmdKey)
		case !row.Writable && row.CommandRoute != "":
			b.failf(path+"."+cmdKey, ErrInvalidRow, "command route on a row that is not writable (set writable = true)")
		}
	}
	if reason := row.Deadband.validate(); reason != "" {
		b.failf(path+".deadband", ErrInvalidRow, reason)
	}
	if !row.QoS.Valid() {
		b.fail(path+".qos", valueErr(ErrInvalidRow, row.QoS.String(), "MQTT QoS must be 0, 1 or 2"))
	}

	dataT, cmdT := b.templates(row, isMethod, path, routeKey, cmdKey)
	servers := b.matchServers(row, path+".servers")
	if len(b.errs) > errsBefore || !b.prefixOK {
		return
	}

	name := row.Name
	subject := row.Node
	if isMethod {
		subject = row.Method
	}
	if name == "" {
		name = subject.DefaultName()
	}
	vars := Vars{Prefix: b.cfg.Prefix, Name: name, Path: subject.Path(), Node: subject.String()}
	for _, uri := range servers {
		e := b.t.byServer[uri]
		vars.Server = e.server.Key
		it := &Item{
			Row: i, Kind: Variable, ServerURI: uri, ServerKey: e.server.Key,
			Node: row.Node, Name: name, Writable: row.Writable, Settings: row.Settings,
		}
		owner := routeOwner{desc: path + " for server " + quote(uri)}
		ok := true
		if isMethod {
			it.Kind, it.Node, it.Object, it.Method = Method, NodeRef{}, row.Object, row.Method
			it.Arguments = slices.Clone(row.Arguments)
		}
		if !isMethod && !row.WriteOnly {
			if it.Route, ok = b.render(dataT, vars, path+"."+routeKey); ok {
				ok = b.claim(it.Route, owner, path+"."+routeKey)
			}
		}
		if ok && (row.Writable || isMethod) {
			ok = b.commandRoutes(it, cmdT, vars, owner, path+"."+cmdKey)
		}
		if !ok {
			continue
		}
		it.prelude = appendPrelude(nil, it)
		e.items = append(e.items, it)
		if it.CommandRoute != "" {
			b.t.commands[it.CommandRoute] = it
		}
	}
}

// templates parses the row's templates, falling back to the defaults.
func (b *builder) templates(row Row, isMethod bool, path, routeKey, cmdKey string) (data, cmd Template) {
	sep := string(b.cfg.Syntax.Separator())
	dataText := row.Route
	if dataText == "" {
		dataText = "{prefix}" + sep + "{server}" + sep + "{name}"
	}
	cmdText := row.CommandRoute
	switch {
	case cmdText != "":
	case isMethod:
		cmdText = "{prefix}" + sep + "{server}" + sep + "{name}" + sep + "call"
	default:
		cmdText = dataText + sep + "set"
	}
	hasPath := row.Node.IsBrowsePath() || (isMethod && row.Method.IsBrowsePath())
	parse := func(text, key string) Template {
		t, err := ParseTemplate(text)
		if err != nil {
			b.fail(path+"."+key, err)
			return Template{}
		}
		if t.UsesPath() && !hasPath {
			b.fail(path+"."+key, valueErr(ErrTemplate, text, "{path} needs a browse path (browse_path, or a method given by path)"))
		}
		return t
	}
	if !isMethod {
		data = parse(dataText, routeKey)
	}
	// A default command template built from a bad data template would only
	// repeat the data template's error.
	if row.CommandRoute != "" || isMethod || (!data.IsZero() && row.Writable) {
		cmd = parse(cmdText, cmdKey)
	}
	return data, cmd
}

func (b *builder) render(t Template, v Vars, path string) (string, bool) {
	r, err := t.Render(b.cfg.Syntax, v)
	if err != nil {
		b.fail(path, err)
		return "", false
	}
	return r, true
}

func (b *builder) commandRoutes(it *Item, t Template, v Vars, owner routeOwner, path string) bool {
	route, ok := b.render(t, v, path)
	if !ok || !b.claim(route, owner, path) {
		return false
	}
	it.CommandRoute = route
	if b.cfg.Syntax == MQTT {
		it.ResultRoute = route + "/result"
		if err := ValidateRoute(MQTT, it.ResultRoute); err != nil {
			b.fail(path, err)
			return false
		}
		if !b.claim(it.ResultRoute, owner, path) {
			return false
		}
	}
	return true
}

// matchServers expands the row's server patterns against the allow-list.
func (b *builder) matchServers(row Row, path string) []string {
	if len(row.Servers) == 0 {
		b.failf(path, ErrUnknownServer, "needs at least one server URI or glob")
		return nil
	}
	var out []string
	for j, p := range row.Servers {
		ppath := path
		if len(row.Servers) > 1 {
			ppath += "[" + strconv.Itoa(j) + "]"
		}
		if reason := checkGlob(p); reason != "" {
			b.fail(ppath, valueErr(ErrSyntax, p, reason))
			continue
		}
		n := 0
		if isGlob(p) {
			for _, s := range b.t.servers {
				if globMatch(p, s.URI) {
					out = append(out, s.URI)
					n++
				}
			}
			if n == 0 {
				b.fail(ppath, valueErr(ErrUnknownServer, p, "glob matches no server in [[servers]]"))
			}
			continue
		}
		uri := unescapeGlob(p)
		if _, ok := b.t.byServer[uri]; !ok {
			b.fail(ppath, valueErr(ErrUnknownServer, p, "not in [[servers]] (the allow-list)"))
			continue
		}
		out = append(out, uri)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// Syntax returns the bus syntax the table was built for.
func (t *Table) Syntax() Syntax { return t.syntax }

// Prefix returns the bus prefix.
func (t *Table) Prefix() string { return t.prefix }

// Servers returns the allow-listed servers with their effective keys, in
// configuration order.
func (t *Table) Servers() []Server { return slices.Clone(t.servers) }

// Allowed reports whether uri is an allow-listed ServerUri (exact,
// case-sensitive).
func (t *Table) Allowed(uri string) bool {
	_, ok := t.byServer[uri]
	return ok
}

// For returns the items that apply to the server with ServerUri uri, in row
// order; nil for a server that is not allow-listed. The slice is shared: do
// not modify it.
func (t *Table) For(uri string) []*Item {
	if e, ok := t.byServer[uri]; ok {
		return e.items
	}
	return nil
}

// StatusRoute returns the presence subject/topic of a server:
// "<prefix>.status.<key>" or "<prefix>/status/<key>".
func (t *Table) StatusRoute(uri string) (string, bool) {
	e, ok := t.byServer[uri]
	if !ok {
		return "", false
	}
	return e.status, true
}

// Route returns the item whose command route is route: the subject a NATS
// request arrived on or the MQTT topic a "set"/"call" message arrived on.
// Only writable variables and declared methods have command routes, so this
// is the command allow-list.
func (t *Table) Route(route string) (*Item, bool) {
	it, ok := t.commands[route]
	return it, ok
}

// CommandRoutes returns every command route, sorted: what a bus adapter
// subscribes to.
func (t *Table) CommandRoutes() []string {
	out := make([]string, 0, len(t.commands))
	for r := range t.commands {
		out = append(out, r)
	}
	slices.Sort(out)
	return out
}
