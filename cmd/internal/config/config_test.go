package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/rcbridge/rcbridge/mapping"
	"github.com/rcbridge/rcbridge/rc"
)

const examplePath = "../../../config.example.toml"

func TestExampleConfigLoads(t *testing.T) {
	cfg, err := Load(examplePath, nil)
	if err != nil {
		t.Fatalf("config.example.toml does not load:\n%v", err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	if cfg.Bus.Kind != BusNATS || len(cfg.Servers) != 3 || len(cfg.Map) != 5 {
		t.Fatalf("unexpected content: kind %v, %d servers, %d rows", cfg.Bus.Kind, len(cfg.Servers), len(cfg.Map))
	}
	if got := cfg.Servers[0].Identity.PasswordEnv; got != "LINE1_PASSWORD" {
		t.Fatalf("identity.password_env = %q", got)
	}
	// The second server sets only its URI and security: the rest are defaults.
	want := DefaultServer()
	want.URI, want.SecurityPolicy, want.SecurityMode = "urn:plant:line2", PolicyNone, ModeNone
	if !reflect.DeepEqual(cfg.Servers[1], want) {
		t.Fatalf("servers[1] = %+v\nwant %+v", cfg.Servers[1], want)
	}
	tab, err := cfg.Table()
	if err != nil {
		t.Fatal(err)
	}
	for _, route := range []string{"rcbridge.line1.setpoint.set", "rcbridge.press.target.write", "rcbridge.line1.reset.call", "rcbridge.urn:plant:line2.reset.call"} {
		if _, ok := tab.Route(route); !ok {
			t.Errorf("command route %q missing; have %q", route, tab.CommandRoutes())
		}
	}
	items := tab.For("urn:plant:line2")
	if len(items) != 2 || items[0].Route != "rcbridge.urn:plant:line2.speed" || items[0].SamplingInterval != 250*time.Millisecond || items[0].Deadband.Value != 0.5 {
		t.Fatalf("line2 items: %+v", items[0])
	}
	if m := tab.For("urn:plant:line1")[2]; m.Kind != mapping.Method || len(m.Arguments) != 2 || m.Arguments[1].String() != "String" {
		t.Fatalf("method row: %+v", m)
	}
}

// TestExampleDocumentsEveryKey checks that config.example.toml mentions
// every key of every section, so the example stays the reference.
func TestExampleDocumentsEveryKey(t *testing.T) {
	data, err := os.ReadFile(examplePath)
	if err != nil {
		t.Fatal(err)
	}
	text := string(data)
	var walk func(tp reflect.Type, prefix string)
	walk = func(tp reflect.Type, prefix string) {
		for i := 0; i < tp.NumField(); i++ {
			f := tp.Field(i)
			tag := f.Tag.Get("koanf")
			path := tag
			if prefix != "" {
				path = prefix + "." + tag
			}
			ft := f.Type
			if ft.Kind() == reflect.Slice && ft.Elem().Kind() == reflect.Struct && !isTextType(ft.Elem()) {
				if !strings.Contains(text, "[["+path+"]]") {
					t.Errorf("config.example.toml lacks [[%s]]", path)
				}
				walk(ft.Elem(), path)
				continue
			}
			if ft.Kind() == reflect.Struct && !isTextType(ft) {
				walk(ft, path)
				continue
			}
			if ft == reflect.TypeFor[Secret]() {
				continue // inline secrets are refused, so the example must not show them
			}
			if !regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(tag) + ` = |^# ` + regexp.QuoteMeta(tag) + `[: ]|\b` + regexp.QuoteMeta(tag) + `[,:]`).MatchString(text) {
				t.Errorf("config.example.toml does not document %s", path)
			}
		}
	}
	walk(reflect.TypeFor[Config](), "")
}

func TestDefaultsApply(t *testing.T) {
	cfg, err := Parse([]byte(`
[[servers]]
uri = "urn:a"
security_policy = "None"
security_mode = "None"
[[map]]
servers = "urn:a"
node = "ns=2;i=1"
`), nil)
	if err != nil {
		t.Fatal(err)
	}
	def := Default()
	if !reflect.DeepEqual(cfg.Listener, def.Listener) || !reflect.DeepEqual(cfg.Bus, def.Bus) || !reflect.DeepEqual(cfg.Client, def.Client) {
		t.Fatal("section defaults not applied")
	}
	row := cfg.Map[0]
	if row.QueueSize != 10 || !row.Publish || row.Payload != mapping.PayloadJSON || len(row.Servers) != 1 {
		t.Fatalf("row defaults: %+v", row)
	}
	if cfg.Servers[0].PublishingInterval.D() != 500*time.Millisecond || cfg.Servers[0].Identity.Kind != IdentityAnonymous {
		t.Fatalf("server defaults: %+v", cfg.Servers[0])
	}
	if cfg.Bus.Kind != BusEmbedded || cfg.Log.Level.Level() != slog.LevelInfo {
		t.Fatal("bus/log defaults")
	}
}

// TestKeys decodes each key from TOML and checks where it lands.
func TestKeys(t *testing.T) {
	srv := "[[servers]]\nuri = \"urn:a\"\nsecurity_policy = \"None\"\nsecurity_mode = \"None\"\n"
	row := "[[map]]\nservers = \"urn:a\"\n"
	tests := []struct {
		name  string
		toml  string
		check func(c *Config) bool
	}{
		{"listener.address", "[listener]\naddress = \"127.0.0.1:5000\"", func(c *Config) bool { return c.Listener.Address == "127.0.0.1:5000" }},
		{"listener.first_message_timeout", "[listener]\nfirst_message_timeout = \"7s\"", func(c *Config) bool { return c.Listener.FirstMessageTimeout.D() == 7*time.Second }},
		{"listener.max_pending", "[listener]\nmax_pending = 100", func(c *Config) bool { return c.Listener.MaxPending == 100 }},
		{"listener.max_pending_per_source", "[listener]\nmax_pending_per_source = 3", func(c *Config) bool { return c.Listener.MaxPendingPerSource == 3 }},
		{"listener.hold_time", "[listener]\nhold_time = \"1m\"", func(c *Config) bool { return c.Listener.HoldTime.D() == time.Minute }},
		{"listener.hold_per_server", "[listener]\nhold_per_server = 4", func(c *Config) bool { return c.Listener.HoldPerServer == 4 }},
		{"servers.uri/key", "[[servers]]\nuri = \"urn:x\"\nkey = \"x\"", func(c *Config) bool { return c.Servers[0].URI == "urn:x" && c.Servers[0].Key == "x" }},
		{"servers.security", "[[servers]]\nuri = \"urn:x\"\nsecurity_policy = \"http://opcfoundation.org/UA/SecurityPolicy#Aes256_Sha256_RsaPss\"\nsecurity_mode = \"Sign\"", func(c *Config) bool {
			return c.Servers[0].SecurityPolicy == PolicyAes256Sha256RsaPss && c.Servers[0].SecurityMode == ModeSign && c.Servers[0].SecurityPolicy.URI() == "http://opcfoundation.org/UA/SecurityPolicy#Aes256_Sha256_RsaPss"
		}},
		{"servers.certs", "[[servers]]\nuri = \"urn:a\"\nserver_certificate = \"a.der\"\ntrust_dir = \"t\"\nsecurity_policy = \"Aes128_Sha256_RsaOaep\"\nsecurity_mode = \"SignAndEncrypt\"", func(c *Config) bool {
			return c.Servers[0].ServerCertificate == "a.der" && c.Servers[0].TrustDir == "t" && c.Servers[0].SecurityPolicy == PolicyAes128Sha256RsaOaep
		}},
		{"servers.identity username", srv + "[servers.identity]\nkind = \"username\"\nusername = \"u\"\npassword_file = \"/run/secrets/p\"", func(c *Config) bool {
			id := c.Servers[0].Identity
			return id.Kind == IdentityUsername && id.Username == "u" && id.PasswordRef() == SecretRef{File: "/run/secrets/p"}
		}},
		{"servers.identity certificate", srv + "[servers.identity]\nkind = \"certificate\"\ncertificate = \"u.pem\"\nprivate_key = \"u.key\"", func(c *Config) bool {
			return c.Servers[0].Identity.Certificate == "u.pem" && c.Servers[0].Identity.PrivateKey == "u.key"
		}},
		{"servers.subscription", srv + "publishing_interval = \"2s\"\nmax_items_per_subscription = 50\nnotification_queue_size = 9\ncommand_rate = 0.5\ncommand_burst = 2", func(c *Config) bool {
			s := c.Servers[0]
			return s.PublishingInterval.D() == 2*time.Second && s.MaxItemsPerSubscription == 50 && s.NotificationQueueSize == 9 && s.CommandRate == 0.5 && s.CommandBurst == 2
		}},
		{"client", "[client]\ncertificate = \"c.pem\"\nprivate_key = \"c.key\"\ngenerate_certificate = false\ncertificate_dir = \"d\"\napplication_uri = \"urn:me\"\napplication_name = \"me\"\ntrust_dir = \"t\"\nrequest_timeout = \"3s\"\nsession_timeout = \"1h\"\nbuffer_size = 16384", func(c *Config) bool {
			cl := c.Client
			return cl.Certificate == "c.pem" && cl.PrivateKey == "c.key" && !cl.GenerateCertificate && cl.CertificateDir == "d" && cl.ApplicationURI == "urn:me" && cl.ApplicationName == "me" && cl.TrustDir == "t" && cl.RequestTimeout.D() == 3*time.Second && cl.SessionTimeout.D() == time.Hour && cl.BufferSize == 16384
		}},
		{"bus.nats", "[bus]\nkind = \"nats\"\nprefix = \"plant.a\"\nanswer_unknown_commands = false\n[bus.nats]\nurls = [\"tls://n1:4222\", \"tls://n2:4222\"]\nname = \"b\"\nuser = \"u\"\npassword_env = \"NATS_PW\"\nreconnect_buffer_size = 1024\nconnect_timeout = \"1s\"\npublish_timeout = \"2s\"\n[bus.nats.tls]\nenabled = true\nca = \"ca.pem\"\ncertificate = \"c.pem\"\nprivate_key = \"c.key\"\nserver_name = \"nats.local\"\n[bus.nats.jetstream]\nenabled = true\nstream = \"S\"\nstatus_bucket = \"B\"\nduplicate_window = \"1m\"\nmax_age = \"0s\"\nsubjects = [\"plant.a.*.*\"]\nstatus_ttl = \"5s\"", func(c *Config) bool {
			n := c.Bus.NATS
			return c.Bus.Kind == BusNATS && c.Bus.Prefix == "plant.a" && !c.Bus.AnswerUnknownCommands && len(n.URLs) == 2 && n.Name == "b" && n.User == "u" && n.PasswordEnv == "NATS_PW" && n.ReconnectBufferSize == 1024 &&
				n.ConnectTimeout.D() == time.Second && n.PublishTimeout.D() == 2*time.Second && n.TLS == TLS{Enabled: true, CA: "ca.pem", Certificate: "c.pem", PrivateKey: "c.key", ServerName: "nats.local"} &&
				reflect.DeepEqual(n.JetStream, JetStream{Enabled: true, Stream: "S", StatusBucket: "B", DuplicateWindow: Duration(time.Minute), Subjects: []string{"plant.a.*.*"}, StatusTTL: Duration(5 * time.Second)})
		}},
		{"bus.nats token", "[bus]\nkind = \"nats\"\n[bus.nats]\ntoken_file = \"tok\"", func(c *Config) bool { return c.Bus.NATS.TokenRef() == SecretRef{File: "tok"} }},
		{"bus.nats token env", "[bus]\nkind = \"nats\"\n[bus.nats]\ntoken_env = \"TOK\"", func(c *Config) bool { return c.Bus.NATS.TokenRef() == SecretRef{Env: "TOK"} }},
		{"bus.nats nkey", "[bus]\nkind = \"nats\"\n[bus.nats]\nnkey_seed_file = \"seed\"", func(c *Config) bool { return c.Bus.NATS.NKeySeedFile == "seed" }},
		{"bus.nats creds", "[bus]\nkind = \"nats\"\n[bus.nats]\ncreds_file = \"x.creds\"", func(c *Config) bool { return c.Bus.NATS.CredsFile == "x.creds" }},
		{"bus.mqtt", "[bus]\nkind = \"mqtt\"\nprefix = \"plant/a\"\n[bus.mqtt]\nbrokers = [\"ssl://m:8883\"]\nclient_id = \"c1\"\nusername = \"u\"\npassword_file = \"pw\"\nqos = 2\nretain = true\npersistent_session = false\nkeep_alive = \"10s\"\nconnect_timeout = \"3s\"\n[bus.mqtt.tls]\nenabled = true", func(c *Config) bool {
			m := c.Bus.MQTT
			return c.Bus.Kind == BusMQTT && m.Brokers[0] == "ssl://m:8883" && m.ClientID == "c1" && m.Username == "u" && m.PasswordFile == "pw" && m.QoS == mapping.ExactlyOnce && m.Retain && !m.PersistentSession && m.KeepAlive.D() == 10*time.Second && m.ConnectTimeout.D() == 3*time.Second && m.TLS.Enabled
		}},
		{"bus.embedded", "[bus.embedded]\naddress = \"127.0.0.1:14222\"\ndata_dir = \"/tmp/js\"\n[bus.embedded.jetstream]\nenabled = false", func(c *Config) bool {
			return c.Bus.Embedded.Address == "127.0.0.1:14222" && c.Bus.Embedded.DataDir == "/tmp/js" && !c.Bus.Embedded.JetStream.Enabled
		}},
		{"map node keys", srv + row + "node = \"nsu=urn:p;s=X\"\nname = \"x\"\nsampling_interval = \"100ms\"\nqueue_size = 5\ndeadband_type = \"percent\"\ndeadband = 2.5\nsubject = \"{prefix}.x.{name}\"\ncommand_subject = \"{prefix}.x.{name}.w\"\npayload = \"value\"\nwritable = true\npublish = true", func(c *Config) bool {
			r := c.Map[0]
			return r.Node.String() == "nsu=urn:p;s=X" && r.Name == "x" && r.SamplingInterval.D() == 100*time.Millisecond && r.QueueSize == 5 && r.DeadbandType == mapping.DeadbandPercent && r.Deadband == 2.5 &&
				r.Subject == "{prefix}.x.{name}" && r.CommandSubject == "{prefix}.x.{name}.w" && r.Payload == mapping.PayloadValue && r.Writable && r.Publish
		}},
		{"map browse_path and servers list", srv + "[[servers]]\nuri = \"urn:b\"\nsecurity_policy = \"None\"\nsecurity_mode = \"None\"\n[[map]]\nservers = [\"urn:a\", \"urn:b\"]\nbrowse_path = \"/Objects/2:X\"", func(c *Config) bool {
			return c.Map[0].BrowsePath.String() == "/Objects/2:X" && len(c.Map[0].Servers) == 2
		}},
		{"map mqtt keys", "[bus]\nkind = \"mqtt\"\n" + srv + row + "node = \"ns=2;i=1\"\ntopic = \"{prefix}/x\"\ncommand_topic = \"{prefix}/x/w\"\nwritable = true\nqos = 0\nretain = true", func(c *Config) bool {
			r := c.Map[0]
			return r.Topic == "{prefix}/x" && r.CommandTopic == "{prefix}/x/w" && *r.QoS == mapping.AtMostOnce && *r.Retain
		}},
		{"map method", srv + row + "object = \"ns=2;s=O\"\nmethod = \"/Objects/2:O/2:M\"\narguments = [\"Double\", \"Int32[]\"]", func(c *Config) bool {
			r := c.Map[0]
			return r.Object.String() == "ns=2;s=O" && r.Method.IsBrowsePath() && len(r.Arguments) == 2 && r.Arguments[1].String() == "Int32[]"
		}},
		{"http", "[http]\naddress = \"\"", func(c *Config) bool { return c.HTTP.Address == "" }},
		{"http.pprof", "[http]\npprof = true", func(c *Config) bool { return c.HTTP.PProf }},
		{"log", "[log]\nlevel = \"debug\"\nformat = \"json\"", func(c *Config) bool { return c.Log.Level.Level() == slog.LevelDebug && c.Log.Format == LogJSON }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := Parse([]byte(tt.toml), nil)
			if err != nil {
				t.Fatalf("%v\n--- config:\n%s", err, tt.toml)
			}
			if !tt.check(cfg) {
				t.Fatalf("key not decoded as expected: %+v", cfg)
			}
		})
	}
}

// TestBrokenConfigListsEveryError loads a file with one mistake of each
// kind and checks that all of them are reported at once, with key paths.
func TestBrokenConfigListsEveryError(t *testing.T) {
	broken := `
colour = "blue"

[listener]
address = "nowhere"
first_message_timeout = 5
max_pending = 0
backlog = 10

[[servers]]
uri = "urn:plant:line1"
key = "line.1"
security_policy = "Basic128Rsa15"
security_mode = "Sign"

[servers.identity]
kind = "username"
username = "bridge"
password = "hunter2"

[[servers]]
uri = "urn:plant:line2"
security_policy = "None"
security_mode = "SignAndEncrypt"
publishing_interval = "soon"

[client]
buffer_size = 4096

[bus]
kind = "nats"
prefix = "plant"

[bus.nats]
urls = ["http://example:4222", "nats://u:pw@host:4222"]
token = "s3cret"
tls_ca = "x"

[[map]]
servers = "urn:plant:line1"
node = "ns=2;x=7"

[[map]]
servers = "urn:plant:line1"
node = "ns=2;i=7"
name = "speed"

[[map]]
servers = "urn:plant:line1"
node = "ns=2;i=8"
name = "speed"

[[map]]
servers = "urn:plant:line1"
node = "ns=2;i=9"
writable = true
publish = false

[[map]]
servers = "urn:plant:line*"
node = "ns=2;i=10"
subject = "{prefix}.{server}.{nodeid}"

[[map]]
servers = "urn:nowhere"
node = "ns=2;i=11"
topic = "a/b"
qos = 1

[[map]]
servers = "urn:plant:line1"
node = "ns=2;i=12"
subject = "{prefix}.*.{name}"
deadband_type = "relative"

[log]
level = "loud"
`
	_, err := Parse([]byte(broken), []string{"RCBRIDGE_LISTENER_HOLD_TIME=later", "RCBRIDGE_BUS_NAT_URLS=x", "RCBRIDGE_BUS_NATS_PASSWORD=pw", "HOME=/root"})
	if err == nil {
		t.Fatal("broken config accepted")
	}
	msg := err.Error()
	want := []string{
		`colour: unknown key`,
		`listener.backlog: unknown key`,
		`bus.nats.tls_ca: unknown key`,
		`listener.address "nowhere": expected host:port`,
		`listener.first_message_timeout "5": a duration is text with a unit`,
		`listener.max_pending "0": must be at least 1`,
		`servers[0].security_policy "Basic128Rsa15": deprecated security policy`,
		`servers[0].key "line.1": not a valid token for nats`,
		`servers[0].identity.password "REDACTED": secrets may not be written into the configuration file; use password_file or password_env`,
		`servers[1].security_mode "SignAndEncrypt": security_policy "None" needs security_mode "None"`,
		`servers[1].publishing_interval "soon": not a duration`,
		`client.buffer_size "4096": must be 8192 to 4194304 bytes (4 MiB)`,
		`bus.nats.urls[0] "http://example:4222": expected nats://, tls://, ws://, wss://host:port`,
		`bus.nats.urls[1] "nats://u:xxxxx@host:4222": a password in the URL is an inline secret`,
		`bus.nats.token "REDACTED": secrets may not be written into the configuration file; use token_file or token_env`,
		`map[0].node "ns=2;x=7": unknown identifier type "x"`,
		`map[2].subject "plant.line%2E1.speed": duplicate route: also map[1] for server "urn:plant:line1"`,
		`map[6].subject "plant.*.12": invalid subject: wildcard '*' at byte 6`,
		`map[3].writable: writable row without a command route: with publish = false, set command_subject`,
		`map[4].subject "{prefix}.{server}.{nodeid}": unknown variable {nodeid}`,
		`map[5].servers "urn:nowhere": not in [[servers]] (the allow-list)`,
		`map[5].topic: topic and command_topic are for bus kind mqtt; with nats use subject and command_subject`,
		`map[5].qos: qos and retain apply to bus kind mqtt only`,
		`map[6].deadband_type "relative": unknown deadband type`,
		`log.level "loud": unknown log level`,
		`env RCBRIDGE_BUS_NAT_URLS: matches no configuration key`,
		`env RCBRIDGE_BUS_NATS_PASSWORD: secrets are not set through RCBRIDGE_ variables; name the variable that holds it in bus.nats.password_env`,
		`listener.hold_time (from RCBRIDGE_LISTENER_HOLD_TIME) "later": not a duration`,
	}
	for _, w := range want {
		if !strings.Contains(msg, w) {
			t.Errorf("missing: %s", w)
		}
	}
	for _, leak := range []string{"hunter2", "s3cret", ":pw@"} {
		if strings.Contains(msg, leak) {
			t.Errorf("a secret leaked into the errors: %q", leak)
		}
	}
	// The node that did not parse is not also reported as missing.
	if strings.Contains(msg, "map[0]: needs node") {
		t.Error("a decode failure was reported twice")
	}
	if !errors.Is(err, ErrInvalid) {
		t.Error("errors do not wrap ErrInvalid")
	}
	var fe *FieldError
	if !errors.As(err, &fe) {
		t.Error("errors are not *FieldError")
	}
	if t.Failed() {
		t.Logf("all errors:\n%s", msg)
	}
}

func TestDuplicateRoutesAndStatusCollision(t *testing.T) {
	_, err := Parse([]byte(`
[[servers]]
uri = "urn:a"
key = "a"
security_policy = "None"
security_mode = "None"
[[map]]
servers = "urn:a"
node = "ns=2;i=1"
name = "x"
[[map]]
servers = "*"
node = "ns=2;i=2"
name = "x"
`), nil)
	if err == nil || !strings.Contains(err.Error(), `map[1].subject "rcbridge.a.x": duplicate route: also map[0] for server "urn:a"`) || !errors.Is(err, mapping.ErrDuplicateRoute) {
		t.Fatalf("got %v", err)
	}
}

func TestValidationRules(t *testing.T) {
	srv := "[[servers]]\nuri = \"urn:a\"\nsecurity_policy = \"None\"\nsecurity_mode = \"None\"\n"
	tests := []struct{ toml, msg string }{
		{"[listener]\nmax_pending = 4\nmax_pending_per_source = 5", `listener.max_pending_per_source "5": larger than listener.max_pending (4)`},
		{"[listener]\nfirst_message_timeout = \"1h\"", "at most 10m"},
		{"[listener]\nhold_per_server = 0", `listener.hold_per_server "0": must be at least 1`},
		{"[[servers]]\nuri = \"\"", "servers[0].uri: required"},
		{"[[servers]]\nuri = \" urn:a\"", "without leading or trailing whitespace"},
		{"[[servers]]\nuri = \"urn:a\"\nsecurity_policy = \"Basic256Sha256\"\nsecurity_mode = \"None\"", `needs security_mode "Sign" or "SignAndEncrypt"`},
		{srv + "server_certificate = \"x.der\"", "a pinned certificate with security_policy \"None\" is never checked"},
		{srv + "[servers.identity]\nkind = \"username\"", "servers[0].identity.username: required"},
		{srv + "[servers.identity]\nkind = \"username\"\nusername = \"u\"", `kind = "username" needs password_file or password_env`},
		{srv + "[servers.identity]\nkind = \"username\"\nusername = \"u\"\npassword_file = \"f\"\npassword_env = \"E\"", "set either password_file or password_env, not both"},
		{srv + "[servers.identity]\nkind = \"username\"\nusername = \"u\"\npassword_env = \"1BAD\"", `password_env "1BAD": not an environment variable name`},
		{srv + "[servers.identity]\nusername = \"u\"", `"anonymous" takes no username`},
		{srv + "[servers.identity]\nkind = \"certificate\"", "needs certificate and private_key files"},
		{srv + "[servers.identity]\nkind = \"root\"", `servers[0].identity.kind "root": unknown identity kind`},
		{srv + "command_rate = 0.0", `servers[0].command_rate "0": must be a number of commands per second greater than zero`},
		{"[client]\napplication_uri = \"rcbridge\"", `client.application_uri "rcbridge": must be a URI`},
		{"[client]\ncertificate = \"c.pem\"", "certificate and private_key go together"},
		{"[client]\ngenerate_certificate = false", "the bridge would have no application certificate"},
		{"[client]\nbuffer_size = 8191", `client.buffer_size "8191": must be 8192 to 4194304 bytes`},
		{"[client]\nbuffer_size = 4194305", `client.buffer_size "4194305": must be 8192 to 4194304 bytes`},
		{"[client]\nbuffer_size = 0", `client.buffer_size "0": must be 8192 to 4194304 bytes`},
		{"[client]\nbuffer_size = -1", `client.buffer_size "-1": must be 8192 to 4194304 bytes`},
		{"[client]\nbuffer_size = \"32k\"", `client.buffer_size "32k": expected an integer`},
		{"[bus]\nkind = \"kafka\"", `bus.kind "kafka": unknown bus kind; want "nats", "mqtt" or "embedded"`},
		{"[bus]\nkind = \"nats\"\n[bus.nats]\nurls = []", "bus.nats.urls: at least one URL is required"},
		{"[bus]\nkind = \"nats\"\n[bus.nats]\nuser = \"u\"\npassword_env = \"P\"\ncreds_file = \"c\"", "choose one way to authenticate"},
		{"[bus]\nkind = \"nats\"\n[bus.nats]\npassword_env = \"P\"", "bus.nats.user: required with a password"},
		{"[bus]\nkind = \"nats\"\n[bus.nats.tls]\nca = \"ca.pem\"", "TLS settings given but enabled = false"},
		{"[bus]\nkind = \"nats\"\n[bus.nats.jetstream]\nenabled = true\nstream = \"my.stream\"", `bus.nats.jetstream.stream "my.stream": a JetStream name must be`},
		{"[bus]\nkind = \"nats\"\n[bus.nats.jetstream]\nenabled = true\nstatus_ttl = \"100ms\"", `bus.nats.jetstream.status_ttl "100ms": must be at least 1s`},
		{"[bus]\nkind = \"mqtt\"\n[bus.mqtt]\nbrokers = [\"nats://x:1\"]", `bus.mqtt.brokers[0] "nats://x:1": expected tcp://`},
		{"[bus]\nkind = \"mqtt\"\n[bus.mqtt]\nqos = 3", `bus.mqtt.qos "3": MQTT QoS must be 0, 1 or 2`},
		{"[bus]\nkind = \"mqtt\"\n[bus.mqtt]\nclient_id = \"\"", "bus.mqtt.client_id"},
		{"[bus]\nkind = \"mqtt\"\n[bus.mqtt]\npassword = \"x\"", `bus.mqtt.password "REDACTED": secrets may not be written`},
		{"[bus]\nkind = \"mqtt\"\n" + srv + "[[map]]\nservers = \"urn:a\"\nnode = \"ns=2;i=1\"\nsubject = \"x\"", "map[0].subject: subject and command_subject are for NATS"},
		{"[bus]\nkind = \"mqtt\"\n" + srv + "[[map]]\nservers = \"urn:a\"\nnode = \"ns=2;i=1\"\nqos = 5", `map[0].qos "5": MQTT QoS must be 0, 1 or 2`},
		{"[bus]\nkind = \"mqtt\"\n" + srv + "[[map]]\nservers = \"urn:a\"\nnode = \"ns=2;i=1\"\ntopic = \"a/+/b\"", `map[0].topic "a/+/b": invalid topic: wildcard '+'`},
		{srv + "[[map]]\nservers = \"urn:a\"\nnode = \"/Objects/X\"", `map[0].node "/Objects/X": is a browse path; write it as browse_path`},
		{srv + "[[map]]\nservers = \"urn:a\"\nbrowse_path = \"ns=2;i=1\"", `map[0].browse_path "ns=2;i=1": is a NodeId`},
		{srv + "[[map]]\nservers = \"urn:a\"\nnode = \"ns=2;i=1\"\nbrowse_path = \"/X\"", "map[0]: set node or browse_path, not both"},
		{srv + "[[map]]\nservers = \"urn:a\"\nnode = \"ns=2;i=1\"\nsampling_interval = \"-1s\"", `map[0].sampling_interval "-1s": must be >= 0`},
		{srv + "[[map]]\nservers = \"urn:a\"\nnode = \"ns=2;i=1\"\nwritable = \"yes\"", `map[0].writable "yes": expected true or false, got a string`},
		{srv + "[[map]]\nservers = \"urn:a\"\nnode = 7", `map[0].node "7": expected a string, got an integer`},
		{srv + "[[map]]\nservers = \"urn:a\"\nobject = \"ns=2;i=1\"\nmethod = \"ns=2;i=2\"\narguments = [\"Float64\"]", `map[0].arguments[0] "Float64": unknown type "Float64"`},
		{srv + "[[map]]\nservers = \"urn:a\"\nnode = \"ns=2;i=1\"\nname = \"x\"\nsubject = \"{prefix}.status.x\"\n[[servers]]\nuri = \"urn:b\"\nkey = \"x\"\nsecurity_policy = \"None\"\nsecurity_mode = \"None\"", "duplicate route: also the status subject of server \"urn:b\""},
		{"[bus]\nprefix = \"rc bridge\"\n" + srv + "[[map]]\nservers = \"urn:a\"\nnode = \"ns=2;i=1\"", `bus.prefix "rc bridge": invalid subject: whitespace at byte 2`},
		{"[bus]\nkind = \"mqtt\"\n[bus.mqtt]\nqos = 300", `bus.mqtt.qos "300": out of range 0..255`},
		{"[listener]\nmax_pending = 1.5", `listener.max_pending "1.5": expected an integer`},
		{"[listener]\nmax_pending = -3", `listener.max_pending "-3": must be at least 1`},
		{srv + "[[map]]\nservers = \"urn:a\"\nnode = \"ns=2;i=1\"\nqueue_size = -5", `map[0].queue_size "-5": out of range 0..4294967295`},
		{srv + "[[map]]\nservers = \"urn:a\"\nnode = \"ns=2;i=1\"\nqueue_size = 5000000000", `map[0].queue_size "5000000000": out of range 0..4294967295`},
		{"[http]\naddress = \"localhost\"", `http.address "localhost": expected host:port`},
		{"[log]\nformat = \"xml\"", `log.format "xml": unknown log format`},
	}
	for _, tt := range tests {
		t.Run(tt.msg, func(t *testing.T) {
			_, err := Parse([]byte(tt.toml), nil)
			if err == nil || !strings.Contains(err.Error(), tt.msg) {
				t.Fatalf("got %v\nwant an error containing %q\n--- config:\n%s", err, tt.msg, tt.toml)
			}
		})
	}
}

func TestTOMLSyntaxError(t *testing.T) {
	_, err := Parse([]byte("[listener\naddress = 1"), nil)
	if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "TOML") {
		t.Fatal(err)
	}
	if _, err := Load(filepath.Join(t.TempDir(), "missing.toml"), nil); !errors.Is(err, ErrInvalid) || !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
}

func TestEnvOverrides(t *testing.T) {
	env := []string{
		"RCBRIDGE_BUS_KIND=mqtt",
		"RCBRIDGE_BUS_PREFIX=plant/a",
		"RCBRIDGE_BUS_MQTT_BROKERS=tcp://a:1883, ssl://b:8883",
		"RCBRIDGE_BUS_MQTT_QOS=2",
		"RCBRIDGE_BUS_MQTT_RETAIN=true",
		"RCBRIDGE_BUS_MQTT_PASSWORD_ENV=MQTT_PW",
		"RCBRIDGE_BUS_MQTT_USERNAME=u",
		"RCBRIDGE_BUS_NATS_JETSTREAM_ENABLED=false",
		"RCBRIDGE_LISTENER_MAX_PENDING=10",
		"RCBRIDGE_LISTENER_FIRST_MESSAGE_TIMEOUT=7s",
		"RCBRIDGE_LOG_LEVEL=debug",
		"RCBRIDGE_HTTP_ADDRESS=",
		"RCBRIDGE_CONFIG=/etc/rcbridge.toml", // not an override: ignored
		"RCBRIDGE_NODE=/usr/bin/node",        // the integration suite's: ignored
		"PATH=/usr/bin",
		"malformed",
	}
	cfg, err := Parse([]byte("[listener]\nmax_pending = 50\n"), env)
	if err != nil {
		t.Fatal(err)
	}
	m := cfg.Bus.MQTT
	if cfg.Bus.Kind != BusMQTT || cfg.Bus.Prefix != "plant/a" || !reflect.DeepEqual(m.Brokers, []string{"tcp://a:1883", "ssl://b:8883"}) || m.QoS != 2 || !m.Retain || m.PasswordEnv != "MQTT_PW" {
		t.Fatalf("bus: %+v", cfg.Bus)
	}
	if cfg.Listener.MaxPending != 10 || cfg.Listener.FirstMessageTimeout.D() != 7*time.Second || cfg.Log.Level.Level() != slog.LevelDebug || cfg.HTTP.Address != "" || cfg.Bus.NATS.JetStream.Enabled {
		t.Fatalf("overrides not applied: %+v", cfg)
	}
	bad := []struct{ env, msg string }{
		{"RCBRIDGE_LISTENER_MAX_PENDING=many", `env RCBRIDGE_LISTENER_MAX_PENDING (listener.max_pending) "many": expected an integer`},
		{"RCBRIDGE_BUS_MQTT_RETAIN=maybe", `"maybe": expected true or false`},
		{"RCBRIDGE_BUS_MQTT_QOS=7", `bus.mqtt.qos (from RCBRIDGE_BUS_MQTT_QOS) "7": MQTT QoS must be 0, 1 or 2`},
		{"RCBRIDGE_SERVERS_0_URI=urn:x", "env RCBRIDGE_SERVERS_0_URI: matches no configuration key"},
		{"RCBRIDGE_LOG_LEVLE=debug", "env RCBRIDGE_LOG_LEVLE: matches no configuration key"},
		{"RCBRIDGE_BUS_MQTT_PASSWORD=x", "secrets are not set through RCBRIDGE_ variables"},
		{"RCBRIDGE_CLIENT_SESSION_TIMEOUT=-5s", `client.session_timeout "-5s": must be greater than zero`},
		{"RCBRIDGE_CLIENT_BUFFER_SIZE=1024", `client.buffer_size "1024": must be 8192 to 4194304 bytes`},
	}
	for _, b := range bad {
		_, err := Parse(nil, []string{b.env})
		if err == nil || !strings.Contains(err.Error(), b.msg) {
			t.Errorf("%s: got %v, want %q", b.env, err, b.msg)
		}
	}
}

func TestEnvNamesAreUnambiguous(t *testing.T) {
	seen := map[string]string{}
	var walk func(tp reflect.Type, prefix string)
	walk = func(tp reflect.Type, prefix string) {
		for i := 0; i < tp.NumField(); i++ {
			tag := tp.Field(i).Tag.Get("koanf")
			path := tag
			if prefix != "" {
				path = prefix + "." + tag
			}
			ft := tp.Field(i).Type
			if ft.Kind() == reflect.Struct && !isTextType(ft) && ft != reflect.TypeFor[Secret]() {
				walk(ft, path)
				continue
			}
			if other, dup := seen[envName(path)]; dup {
				t.Errorf("%s and %s share %s", other, path, envName(path))
			}
			seen[envName(path)] = path
		}
	}
	walk(reflect.TypeFor[Config](), "")
	if len(envLeaves()) < 60 {
		t.Fatalf("only %d overridable keys found", len(envLeaves()))
	}
}

func TestValidateIsPure(t *testing.T) {
	cfg, err := Load(examplePath, nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Listener.MaxPending = 0
	cfg.Map[0].Name = "speed.x"
	before := fmt.Sprintf("%#v", *cfg)
	e1, e2 := cfg.Validate(), cfg.Validate()
	if e1 == nil || e1.Error() != e2.Error() {
		t.Fatalf("Validate not repeatable: %v / %v", e1, e2)
	}
	if after := fmt.Sprintf("%#v", *cfg); after != before {
		t.Fatal("Validate modified the configuration")
	}
}

func TestSecretNeverPrints(t *testing.T) {
	s := NewSecret("hunter2")
	var logBuf bytes.Buffer
	slog.New(slog.NewTextHandler(&logBuf, nil)).Info("x", "password", s)
	j, _ := json.Marshal(struct{ P Secret }{s})
	txt, _ := s.MarshalText()
	for _, out := range []string{fmt.Sprint(s), fmt.Sprintf("%v %s %+v %#v %q", s, s, s, s, s), logBuf.String(), string(j), string(txt)} {
		if strings.Contains(out, "hunter2") || !strings.Contains(out, "REDACTED") {
			t.Errorf("secret printed: %s", out)
		}
	}
	if s.Value() != "hunter2" || !s.IsSet() || (Secret{}).IsSet() {
		t.Fatal("Value")
	}
	// Inside a whole configuration too.
	var id Identity
	_ = id.Password.UnmarshalText([]byte("hunter2"))
	if strings.Contains(fmt.Sprintf("%+v %#v", id, id), "hunter2") {
		t.Fatal("secret printed through its struct")
	}
}

func TestSecretRefLoad(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "pw")
	if err := os.WriteFile(file, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(dir, "empty")
	_ = os.WriteFile(empty, []byte("\n"), 0o600)
	env := func(name string) (string, bool) {
		if name == "PW" {
			return "from-env", true
		}
		return "", false
	}
	if s, err := (SecretRef{File: file}).Load(env); err != nil || s.Value() != "s3cret" {
		t.Fatal(s.Value(), err)
	}
	if s, err := (SecretRef{Env: "PW"}).Load(env); err != nil || s.Value() != "from-env" {
		t.Fatal(s.Value(), err)
	}
	for _, r := range []SecretRef{{Env: "NOPE"}, {File: empty}, {File: filepath.Join(dir, "missing")}, {}, {File: file, Env: "PW"}} {
		_, err := r.Load(env)
		if !errors.Is(err, ErrSecret) || strings.Contains(err.Error(), "s3cret") {
			t.Errorf("%+v: %v", r, err)
		}
	}
}

func TestTypedValues(t *testing.T) {
	type textValue interface {
		UnmarshalText([]byte) error
		String() string
	}
	tests := []struct {
		v  textValue
		in []string
	}{
		{new(SecurityPolicy), []string{"None", "Basic256Sha256", "Aes128_Sha256_RsaOaep", "Aes256_Sha256_RsaPss"}},
		{new(SecurityMode), []string{"None", "Sign", "SignAndEncrypt"}},
		{new(IdentityKind), []string{"anonymous", "username", "certificate"}},
		{new(BusKind), []string{"embedded", "nats", "mqtt"}},
		{new(LogLevel), []string{"debug", "info", "warn", "error"}},
		{new(LogFormat), []string{"text", "json"}},
		{new(Duration), []string{"1.5s", "2m0s", "250ms"}},
	}
	for _, tt := range tests {
		for _, in := range tt.in {
			if err := tt.v.UnmarshalText([]byte(in)); err != nil || tt.v.String() != in {
				t.Errorf("%T %q: %v → %q", tt.v, in, err, tt.v.String())
			}
		}
		if err := tt.v.UnmarshalText([]byte("bogus")); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), `"bogus"`) {
			t.Errorf("%T accepted bogus: %v", tt.v, err)
		}
	}
	if BusMQTT.Syntax() != mapping.MQTT || BusEmbedded.Syntax() != mapping.NATS {
		t.Fatal("Syntax")
	}
	if ModeSignAndEncrypt.UA().String() != "MessageSecurityModeSignAndEncrypt" {
		t.Fatal(ModeSignAndEncrypt.UA().String())
	}
	if SecurityPolicy(0).String() != "SecurityPolicy(0)" {
		t.Fatal(SecurityPolicy(0).String())
	}
}

// TestStreamSubjectsCaptureCommands: configured JetStream subjects that
// would capture a command subject, the write route of a read-only row or
// the catch-all command filters are refused with their key paths, every
// one at once; data and status subjects are fine.
func TestStreamSubjectsCaptureCommands(t *testing.T) {
	conf := func(kind, section, subjects string) string {
		return `
[bus]
kind = "` + kind + `"
prefix = "plant"
[` + section + `]
enabled = true
subjects = ` + subjects + `
[[servers]]
uri = "urn:a"
key = "a"
security_policy = "None"
security_mode = "None"
[[map]]
servers = "urn:a"
node = "ns=2;i=1"
name = "speed"
writable = true
[[map]]
servers = "urn:a"
node = "ns=2;i=2"
name = "temp"
[[map]]
servers = "urn:a"
node = "ns=2;i=3"
name = "target"
writable = true
publish = false
command_subject = "cmd.{server}.target"
`
	}
	_, err := Parse([]byte(conf("nats", "bus.nats.jetstream", `["plant.a.*", "plant.status.*", "plant.>", "cmd.a.*", "plant.*.temp.set", "plant.*.*.call", "plant..x", "plant.a*"]`)), nil)
	if err == nil {
		t.Fatal("accepted")
	}
	for _, want := range []string{
		`bus.nats.jetstream.subjects[2] "plant.>": overlaps the command subject "plant.*.*.call"`,
		`bus.nats.jetstream.subjects[3] "cmd.a.*": overlaps the command subject "cmd.a.target"`,
		`bus.nats.jetstream.subjects[4] "plant.*.temp.set": overlaps the command subject "plant.*.*.set"`,
		`bus.nats.jetstream.subjects[5] "plant.*.*.call": overlaps the command subject "plant.*.*.call"`,
		`bus.nats.jetstream.subjects[6] "plant..x": empty token`,
		`bus.nats.jetstream.subjects[7] "plant.a*": a wildcard must be a whole token`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
	// "plant.status.>" would overlap too: "plant.status.x.set" is in the
	// shape of a command subject.
	for _, fine := range []string{"subjects[0]", "subjects[1]"} {
		if strings.Contains(err.Error(), fine) {
			t.Errorf("%s refused:\n%v", fine, err)
		}
	}
	if _, err := Parse([]byte(conf("embedded", "bus.embedded.jetstream", `["plant.a.speed", "plant.status.*", "plant.status.*.events"]`)+"[bus.embedded]\ndata_dir = \"/tmp/x\"\n"), nil); err != nil {
		t.Errorf("data and status subjects refused: %v", err)
	}
	// Without the catch-all filters only declared routes count.
	if _, err := Parse([]byte(strings.Replace(conf("nats", "bus.nats.jetstream", `["plant.status.>", "plant.a.*"]`), "[bus]\n", "[bus]\nanswer_unknown_commands = false\n", 1)), nil); err != nil {
		t.Errorf("status subjects refused without the command filters: %v", err)
	}
	if _, err := Parse([]byte(conf("embedded", "bus.embedded.jetstream", `[]`)+"[bus.embedded]\ndata_dir = \"/tmp/x\"\n"), nil); err == nil || !strings.Contains(err.Error(), "bus.embedded.jetstream.subjects: an empty list captures nothing") {
		t.Errorf("empty list: %v", err)
	}
}

// TestClientBufferSize checks client.buffer_size: its default is the rc
// package's, the bounds of Part 6, 7.1.2.3 (8192) and of rc (4 MiB) are
// accepted, and an environment override applies.
func TestClientBufferSize(t *testing.T) {
	if got := Default().Client.BufferSize; got != rc.DefaultBufferSize {
		t.Errorf("default client.buffer_size %d, want rc.DefaultBufferSize %d", got, rc.DefaultBufferSize)
	}
	for _, tt := range []struct {
		name string
		toml string
		env  []string
		want int
	}{
		{"default", "", nil, rc.DefaultBufferSize},
		{"smallest", "[client]\nbuffer_size = 8192", nil, 8192},
		{"largest", "[client]\nbuffer_size = 4194304", nil, 4 << 20},
		{"env", "[client]\nbuffer_size = 65536", []string{"RCBRIDGE_CLIENT_BUFFER_SIZE=16384"}, 16384},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := Parse([]byte(tt.toml), tt.env)
			if err != nil {
				t.Fatal(err)
			}
			if cfg.Client.BufferSize != tt.want {
				t.Errorf("client.buffer_size %d, want %d", cfg.Client.BufferSize, tt.want)
			}
		})
	}
}

// TestSamplingInterval: a row without sampling_interval samples at the
// publishing interval, an explicit 0 asks for the fastest practical rate
// (OPC UA's 0, Part 4, 7.21), anything else is the interval asked for.
func TestSamplingInterval(t *testing.T) {
	srv := "[[servers]]\nuri = \"urn:a\"\nsecurity_policy = \"None\"\nsecurity_mode = \"None\"\n"
	for _, tt := range []struct {
		key  string
		want time.Duration
	}{
		{"", 0},
		{"sampling_interval = \"0s\"\n", mapping.SampleFastest},
		{"sampling_interval = \"0\"\n", mapping.SampleFastest},
		{"sampling_interval = \"250ms\"\n", 250 * time.Millisecond},
	} {
		t.Run(strings.TrimSpace(tt.key), func(t *testing.T) {
			cfg, err := Parse([]byte(srv+"[[map]]\nservers = \"urn:a\"\nnode = \"ns=2;i=1\"\n"+tt.key), nil)
			if err != nil {
				t.Fatal(err)
			}
			tab, err := cfg.Table()
			if err != nil {
				t.Fatal(err)
			}
			if got := tab.For("urn:a")[0].SamplingInterval; got != tt.want {
				t.Errorf("sampling interval %v, want %v", got, tt.want)
			}
		})
	}
}
