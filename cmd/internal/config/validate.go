package config

import (
	"errors"
	"math"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/rcbridge/rcbridge/mapping"
)

// maxURILen is the ReverseHello's limit on a ServerUri (Part 6, 7.1.2.6).
const maxURILen = 4096

// minBufferSize and maxBufferSize bound client.buffer_size: Part 6,
// 7.1.2.3 requires at least 8192; the bridge accepts no larger buffer from
// a server than 4 MiB either (rc.ClientConfig.BufferSize).
const (
	minBufferSize = 8192
	maxBufferSize = 4 << 20
)

// Validate checks the configuration without touching files, the network or
// the environment, and reports every problem at once: the error is an
// errors.Join of *FieldError values, each wrapping ErrInvalid. It does not
// modify c.
func (c *Config) Validate() error {
	errs := c.validate()
	if len(errs) == 0 {
		return nil
	}
	out := make([]error, len(errs))
	for i, e := range errs {
		out[i] = e
	}
	return errors.Join(out...)
}

// checker collects problems.
type checker struct {
	errs []*FieldError
}

func (v *checker) add(path string, err error) { v.errs = append(v.errs, fieldErr(path, err)) }

func (v *checker) bad(path, value, why string) { v.add(path, badValue(value, why)) }

func (v *checker) says(path, why string) { v.add(path, reason(why)) }

func (c *Config) validate() []*FieldError {
	v := &checker{}
	c.Listener.check(v)
	c.checkServers(v)
	c.Client.check(v)
	c.Bus.check(v)
	c.checkMap(v)
	if c.HTTP.Address != "" {
		checkHostPort(v, "http.address", c.HTTP.Address)
	}
	return v.errs
}

func checkHostPort(v *checker, path, addr string) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		v.bad(path, addr, "expected host:port, e.g. \"0.0.0.0:4844\"")
		return
	}
	if strings.ContainsAny(host, " /") {
		v.bad(path, addr, "invalid host")
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		v.bad(path, addr, "port must be a number in 0..65535")
	}
}

func positive(v *checker, path string, d Duration) {
	if d <= 0 {
		v.bad(path, d.String(), "must be greater than zero")
	}
}

func atLeast(v *checker, path string, n, min int) {
	if n < min {
		v.bad(path, strconv.Itoa(n), "must be at least "+strconv.Itoa(min))
	}
}

func (l Listener) check(v *checker) {
	checkHostPort(v, "listener.address", l.Address)
	positive(v, "listener.first_message_timeout", l.FirstMessageTimeout)
	if l.FirstMessageTimeout.D() > 10*time.Minute {
		v.bad("listener.first_message_timeout", l.FirstMessageTimeout.String(), "at most 10m (Part 6 suggests no more than 2m)")
	}
	atLeast(v, "listener.max_pending", l.MaxPending, 1)
	atLeast(v, "listener.max_pending_per_source", l.MaxPendingPerSource, 1)
	if l.MaxPendingPerSource > l.MaxPending && l.MaxPending >= 1 {
		v.bad("listener.max_pending_per_source", strconv.Itoa(l.MaxPendingPerSource), "larger than listener.max_pending ("+strconv.Itoa(l.MaxPending)+")")
	}
	positive(v, "listener.hold_time", l.HoldTime)
	atLeast(v, "listener.hold_per_server", l.HoldPerServer, 1)
}

func (c *Config) checkServers(v *checker) {
	for i, s := range c.Servers {
		p := "servers[" + strconv.Itoa(i) + "]"
		switch {
		case s.URI == "":
			v.says(p+".uri", "required: the ServerUri the server sends in its ReverseHello")
		case len(s.URI) > maxURILen:
			v.bad(p+".uri", s.URI, "longer than 4096 bytes, which no ReverseHello can carry")
		case !utf8.ValidString(s.URI) || strings.TrimSpace(s.URI) != s.URI:
			v.bad(p+".uri", s.URI, "must be valid UTF-8 without leading or trailing whitespace")
		}
		none := s.SecurityPolicy == PolicyNone
		switch {
		case none && s.SecurityMode != ModeNone:
			v.bad(p+".security_mode", s.SecurityMode.String(), `security_policy "None" needs security_mode "None"`)
		case !none && s.SecurityMode == ModeNone:
			v.bad(p+".security_mode", s.SecurityMode.String(), "security_policy "+strconv.Quote(s.SecurityPolicy.String())+` needs security_mode "Sign" or "SignAndEncrypt"`)
		}
		if none && s.ServerCertificate != "" {
			v.says(p+".server_certificate", `a pinned certificate with security_policy "None" is never checked; remove it or turn security on`)
		}
		s.Identity.check(v, p+".identity")
		positive(v, p+".publishing_interval", s.PublishingInterval)
		atLeast(v, p+".max_items_per_subscription", s.MaxItemsPerSubscription, 1)
		atLeast(v, p+".notification_queue_size", s.NotificationQueueSize, 1)
		if !(s.CommandRate > 0) || math.IsInf(s.CommandRate, 0) {
			v.bad(p+".command_rate", strconv.FormatFloat(s.CommandRate, 'g', -1, 64), "must be a number of commands per second greater than zero")
		}
		atLeast(v, p+".command_burst", s.CommandBurst, 1)
	}
}

// checkInlineSecret reports a secret written into the file.
func checkInlineSecret(v *checker, path string, s Secret) {
	if s.IsSet() {
		v.bad(path, redacted, "secrets may not be written into the configuration file; use "+lastKey(path)+"_file or "+lastKey(path)+"_env")
	}
}

func checkSecretRef(v *checker, path string, r SecretRef) {
	if r.File != "" && r.Env != "" {
		v.says(path+"_env", "set either "+lastKey(path)+"_file or "+lastKey(path)+"_env, not both")
	}
	if r.Env != "" && !validEnvName(r.Env) {
		v.bad(path+"_env", r.Env, "not an environment variable name (letters, digits, '_')")
	}
}

func lastKey(path string) string { return path[strings.LastIndex(path, ".")+1:] }

func validEnvName(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c == '_' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || i > 0 && c >= '0' && c <= '9') {
			return false
		}
	}
	return s != ""
}

func (id Identity) check(v *checker, p string) {
	checkInlineSecret(v, p+".password", id.Password)
	checkSecretRef(v, p+".password", id.PasswordRef())
	switch id.Kind {
	case IdentityAnonymous:
		if id.Username != "" || id.PasswordRef().IsSet() || id.Certificate != "" || id.PrivateKey != "" {
			v.says(p+".kind", `"anonymous" takes no username, password or certificate; set kind = "username" or "certificate"`)
		}
	case IdentityUsername:
		if id.Username == "" {
			v.says(p+".username", `required with kind = "username"`)
		}
		if !id.PasswordRef().IsSet() && !id.Password.IsSet() {
			v.says(p+".password_file", `kind = "username" needs password_file or password_env`)
		}
		if id.Certificate != "" || id.PrivateKey != "" {
			v.says(p+".certificate", `a user certificate needs kind = "certificate"`)
		}
	case IdentityCertificate:
		if id.Certificate == "" || id.PrivateKey == "" {
			v.says(p+".certificate", `kind = "certificate" needs certificate and private_key files`)
		}
		if id.Username != "" || id.PasswordRef().IsSet() {
			v.says(p+".username", `kind = "certificate" takes no username or password`)
		}
	}
}

func (c Client) check(v *checker) {
	if c.ApplicationURI == "" || !strings.Contains(c.ApplicationURI, ":") {
		v.bad("client.application_uri", c.ApplicationURI, `must be a URI, e.g. "urn:rcbridge:client"; it goes into the client certificate`)
	}
	if (c.Certificate == "") != (c.PrivateKey == "") {
		v.says("client.certificate", "certificate and private_key go together: set both, or neither to have them generated")
	}
	if c.Certificate == "" && !c.GenerateCertificate {
		v.says("client.certificate", "no certificate and generate_certificate = false: the bridge would have no application certificate")
	}
	if c.Certificate == "" && c.GenerateCertificate && c.CertificateDir == "" {
		v.says("client.certificate_dir", "required to generate the certificate")
	}
	positive(v, "client.request_timeout", c.RequestTimeout)
	positive(v, "client.session_timeout", c.SessionTimeout)
	if c.BufferSize < minBufferSize || c.BufferSize > maxBufferSize {
		v.bad("client.buffer_size", strconv.Itoa(c.BufferSize), "must be "+strconv.Itoa(minBufferSize)+" to "+strconv.Itoa(maxBufferSize)+" bytes (4 MiB)")
	}
}

func (t TLS) check(v *checker, p string) {
	if (t.Certificate == "") != (t.PrivateKey == "") {
		v.says(p+".certificate", "certificate and private_key go together")
	}
	if !t.Enabled && (t.CA != "" || t.Certificate != "" || t.ServerName != "") {
		v.says(p+".enabled", "TLS settings given but enabled = false")
	}
}

func (b Bus) check(v *checker) {
	switch b.Kind {
	case BusNATS:
		b.NATS.check(v)
	case BusMQTT:
		b.MQTT.check(v)
	case BusEmbedded:
		checkHostPort(v, "bus.embedded.address", b.Embedded.Address)
		if b.Embedded.JetStream.Enabled && b.Embedded.DataDir == "" {
			v.says("bus.embedded.data_dir", "required when JetStream is on")
		}
		checkJetStream(v, "bus.embedded.jetstream", b.Embedded.JetStream)
	}
}

func checkURLs(v *checker, path string, urls []string, schemes ...string) {
	if len(urls) == 0 {
		v.says(path, "at least one URL is required")
	}
	for i, u := range urls {
		pu, err := url.Parse(u)
		if err != nil || pu.Host == "" || !slicesContains(schemes, pu.Scheme) {
			v.bad(path+"["+strconv.Itoa(i)+"]", u, "expected "+strings.Join(schemes, "://, ")+"://host:port")
			continue
		}
		if pu.User != nil {
			if _, hasPass := pu.User.Password(); hasPass {
				v.bad(path+"["+strconv.Itoa(i)+"]", pu.Redacted(), "a password in the URL is an inline secret; use the password_file or password_env keys")
			}
		}
	}
}

func slicesContains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func (n NATS) check(v *checker) {
	checkURLs(v, "bus.nats.urls", n.URLs, "nats", "tls", "ws", "wss")
	n.TLS.check(v, "bus.nats.tls")
	checkInlineSecret(v, "bus.nats.password", n.Password)
	checkInlineSecret(v, "bus.nats.token", n.Token)
	checkSecretRef(v, "bus.nats.password", n.PasswordRef())
	checkSecretRef(v, "bus.nats.token", n.TokenRef())
	methods := 0
	for _, set := range []bool{n.User != "" || n.PasswordRef().IsSet(), n.TokenRef().IsSet(), n.NKeySeedFile != "", n.CredsFile != ""} {
		if set {
			methods++
		}
	}
	if methods > 1 {
		v.says("bus.nats", "choose one way to authenticate: user and password, token, nkey_seed_file or creds_file")
	}
	if n.PasswordRef().IsSet() && n.User == "" {
		v.says("bus.nats.user", "required with a password")
	}
	if n.ReconnectBufferSize < 0 {
		v.bad("bus.nats.reconnect_buffer_size", strconv.Itoa(n.ReconnectBufferSize), "must be >= 0")
	}
	positive(v, "bus.nats.connect_timeout", n.ConnectTimeout)
	positive(v, "bus.nats.publish_timeout", n.PublishTimeout)
	checkJetStream(v, "bus.nats.jetstream", n.JetStream)
}

func checkJetStream(v *checker, p string, j JetStream) {
	if !j.Enabled {
		return
	}
	for key, name := range map[string]string{"stream": j.Stream, "status_bucket": j.StatusBucket} {
		if name == "" || strings.ContainsAny(name, " \t.*>/\\") || !utf8.ValidString(name) {
			v.bad(p+"."+key, name, "a JetStream name must be non-empty, without whitespace, '.', '*', '>', '/' or '\\'")
		}
	}
	positive(v, p+".duplicate_window", j.DuplicateWindow)
	if j.StatusTTL < 0 || (j.StatusTTL > 0 && j.StatusTTL < Duration(time.Second)) {
		v.bad(p+".status_ttl", j.StatusTTL.String(), "must be at least 1s (0 keeps entries for ever)")
	}
	if j.MaxAge < 0 {
		v.bad(p+".max_age", j.MaxAge.String(), "must be >= 0 (0 keeps messages without age limit)")
	}
}

func (m MQTT) check(v *checker) {
	checkURLs(v, "bus.mqtt.brokers", m.Brokers, "tcp", "ssl", "tls", "mqtt", "mqtts", "ws", "wss")
	m.TLS.check(v, "bus.mqtt.tls")
	checkInlineSecret(v, "bus.mqtt.password", m.Password)
	checkSecretRef(v, "bus.mqtt.password", m.PasswordRef())
	if m.PasswordRef().IsSet() && m.Username == "" {
		v.says("bus.mqtt.username", "required with a password")
	}
	if m.ClientID == "" || len(m.ClientID) > 65535 || !utf8.ValidString(m.ClientID) {
		v.bad("bus.mqtt.client_id", m.ClientID, "required (valid UTF-8); a persistent session is bound to it")
	}
	if !m.QoS.Valid() {
		v.bad("bus.mqtt.qos", m.QoS.String(), "MQTT QoS must be 0, 1 or 2")
	}
	positive(v, "bus.mqtt.keep_alive", m.KeepAlive)
	positive(v, "bus.mqtt.connect_timeout", m.ConnectTimeout)
}

// checkMap checks what only the configuration knows about rows (which keys
// were used) and then builds the mapping table, which checks the rest.
func (c *Config) checkMap(v *checker) {
	syn := c.Bus.Kind.Syntax()
	for i, r := range c.Map {
		p := "map[" + strconv.Itoa(i) + "]"
		switch {
		case !r.Node.IsZero() && !r.BrowsePath.IsZero():
			v.says(p, "set node or browse_path, not both")
		case r.Node.IsBrowsePath():
			v.bad(p+".node", r.Node.String(), "is a browse path; write it as browse_path")
		case !r.BrowsePath.IsZero() && !r.BrowsePath.IsBrowsePath():
			v.bad(p+".browse_path", r.BrowsePath.String(), "is a NodeId; write it as node (a browse path starts with '/')")
		}
		if syn == mapping.NATS {
			if r.Topic != "" || r.CommandTopic != "" {
				v.says(p+".topic", "topic and command_topic are for bus kind mqtt; with "+c.Bus.Kind.String()+" use subject and command_subject")
			}
			if r.QoS != nil || r.Retain != nil {
				v.says(p+".qos", "qos and retain apply to bus kind mqtt only")
			}
		} else if r.Subject != "" || r.CommandSubject != "" {
			v.says(p+".subject", "subject and command_subject are for NATS; with mqtt use topic and command_topic")
		}
		if r.SamplingInterval != nil && *r.SamplingInterval < 0 {
			v.bad(p+".sampling_interval", r.SamplingInterval.String(), "must be >= 0 (0: the server's fastest practical rate; leave it out for the publishing interval)")
		}
	}
	table, err := mapping.New(c.MappingConfig())
	if err != nil {
		for _, e := range unjoin(err) {
			if pe, ok := e.(*mapping.PathError); ok {
				v.add(pe.Path, pe.Err)
				continue
			}
			v.add("map", e)
		}
		return
	}
	c.checkStreamSubjects(v, table)
}

// checkStreamSubjects refuses configured JetStream subjects that are not
// NATS subjects or that capture a subject the bridge answers requests on.
func (c *Config) checkStreamSubjects(v *checker, table *mapping.Table) {
	p, js := "bus.nats.jetstream", c.Bus.NATS.JetStream
	switch c.Bus.Kind {
	case BusEmbedded:
		p, js = "bus.embedded.jetstream", c.Bus.Embedded.JetStream
	case BusMQTT:
		return
	}
	if !js.Enabled || js.Subjects == nil {
		return
	}
	if len(js.Subjects) == 0 {
		v.says(p+".subjects", "an empty list captures nothing; leave the key out to capture the data, status and events subjects")
	}
	answered := table.CommandRoutes()
	if c.Bus.AnswerUnknownCommands {
		answered = append(answered, table.CommandFilters()...)
	}
	for r := range table.ReadOnlyRoutes() {
		answered = append(answered, r)
	}
	slices.Sort(answered)
	for i, subj := range js.Subjects {
		path := p + ".subjects[" + strconv.Itoa(i) + "]"
		if why := natsFilterProblem(subj); why != "" {
			v.bad(path, subj, why)
			continue
		}
		if j := slices.IndexFunc(answered, func(r string) bool { return mapping.NATS.Overlap(subj, r) }); j >= 0 {
			v.bad(path, subj, "overlaps the command subject "+strconv.Quote(answered[j])+
				": the stream would answer commands with its PubAck; list the data, status and events subjects only")
		}
	}
}

// natsFilterProblem says what is wrong with a NATS subject filter, or "".
func natsFilterProblem(s string) string {
	tokens := strings.Split(s, ".")
	for i, t := range tokens {
		switch {
		case t == "":
			return "empty token"
		case strings.ContainsAny(t, " \t\r\n"):
			return "whitespace"
		case t == ">" && i != len(tokens)-1:
			return "'>' must be the last token"
		case t != "*" && t != ">" && strings.ContainsAny(t, "*>"):
			return "a wildcard must be a whole token"
		}
	}
	return ""
}

// samplingInterval maps the key to mapping's setting: absent is the
// subscription's publishing interval, an explicit 0 the server's fastest
// practical rate (Part 4, 7.21 MonitoringParameters).
func samplingInterval(d *Duration) time.Duration {
	switch {
	case d == nil:
		return 0
	case *d == 0:
		return mapping.SampleFastest
	default:
		return d.D()
	}
}

// MappingConfig converts the configuration into the input of mapping.New,
// filling in the bus defaults for QoS and retain.
func (c *Config) MappingConfig() mapping.Config {
	mc := mapping.Config{Syntax: c.Bus.Kind.Syntax(), Prefix: c.Bus.Prefix}
	for _, s := range c.Servers {
		mc.Servers = append(mc.Servers, mapping.Server{URI: s.URI, Key: s.Key})
	}
	for _, r := range c.Map {
		row := mapping.Row{
			Servers: []string(r.Servers), Node: r.Node, Object: r.Object, Method: r.Method,
			Arguments: r.Arguments, Name: r.Name, WriteOnly: !r.Publish, Writable: r.Writable,
			Settings: mapping.Settings{
				Payload: r.Payload, SamplingInterval: samplingInterval(r.SamplingInterval), QueueSize: r.QueueSize,
				Deadband: mapping.Deadband{Kind: r.DeadbandType, Value: r.Deadband},
				QoS:      c.Bus.MQTT.QoS, Retain: c.Bus.MQTT.Retain,
			},
		}
		if row.Node.IsZero() {
			row.Node = r.BrowsePath
		}
		if mc.Syntax == mapping.MQTT {
			row.Route, row.CommandRoute = r.Topic, r.CommandTopic
			if r.QoS != nil {
				row.QoS = *r.QoS
			}
			if r.Retain != nil {
				row.Retain = *r.Retain
			}
		} else {
			row.Route, row.CommandRoute = r.Subject, r.CommandSubject
		}
		mc.Rows = append(mc.Rows, row)
	}
	return mc
}

// Table builds the mapping table; the configuration must have passed
// Validate.
func (c *Config) Table() (*mapping.Table, error) { return mapping.New(c.MappingConfig()) }

func unjoin(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}
