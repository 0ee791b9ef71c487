package main

import (
	"bufio"
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/rcbridge/rcbridge/cmd/internal/config"
	"go.yaml.in/yaml/v3"
)

// composeFile is the part of docker-compose.yml the test checks.
type composeFile struct {
	Services map[string]composeService `yaml:"services"`
	Volumes  map[string]any            `yaml:"volumes"`
}

type composeService struct {
	Image string `yaml:"image"`
	Build *struct {
		Context          string `yaml:"context"`
		Dockerfile       string `yaml:"dockerfile"`
		DockerfileInline string `yaml:"dockerfile_inline"`
	} `yaml:"build"`
	Entrypoint []string  `yaml:"entrypoint"`
	Command    []string  `yaml:"command"`
	Ports      []string  `yaml:"ports"`
	Volumes    []string  `yaml:"volumes"`
	DependsOn  yaml.Node `yaml:"depends_on"`
}

// mount is one short-syntax volume entry.
type mount struct {
	source, target string
	bind           bool // source is a host path
}

func (s composeService) mounts(t *testing.T) []mount {
	t.Helper()
	var out []mount
	for _, v := range s.Volumes {
		parts := strings.Split(v, ":")
		if len(parts) < 2 || len(parts) > 3 {
			t.Fatalf("volume %q: want source:target[:mode]", v)
		}
		out = append(out, mount{source: parts[0], target: parts[1], bind: strings.HasPrefix(parts[0], ".") || strings.HasPrefix(parts[0], "/")})
	}
	return out
}

func (s composeService) dependsOn(t *testing.T) []string {
	t.Helper()
	switch s.DependsOn.Kind {
	case 0:
		return nil
	case yaml.SequenceNode:
		var list []string
		if err := s.DependsOn.Decode(&list); err != nil {
			t.Fatal(err)
		}
		return list
	case yaml.MappingNode:
		var m map[string]any
		if err := s.DependsOn.Decode(&m); err != nil {
			t.Fatal(err)
		}
		var list []string
		for k := range m {
			list = append(list, k)
		}
		return list
	}
	t.Fatalf("depends_on: unexpected YAML %v", s.DependsOn.Kind)
	return nil
}

// flagValues returns the values of a repeated flag in a command.
func flagValues(cmd []string, name string) []string {
	var out []string
	for i := 0; i+1 < len(cmd); i++ {
		if cmd[i] == name {
			out = append(out, cmd[i+1])
		}
	}
	return out
}

// copySources returns the local sources of the COPY lines of a Dockerfile.
func copySources(t *testing.T, dockerfile string) []string {
	t.Helper()
	var out []string
	sc := bufio.NewScanner(strings.NewReader(dockerfile))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 3 || !strings.EqualFold(f[0], "COPY") {
			continue
		}
		args := f[1:]
		local := true
		for len(args) > 0 && strings.HasPrefix(args[0], "--") {
			local = local && !strings.HasPrefix(args[0], "--from=")
			args = args[1:]
		}
		if local && len(args) >= 2 {
			out = append(out, args[:len(args)-1]...)
		}
	}
	return out
}

func exists(t *testing.T, path string, dir bool) {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Errorf("%v", err)
		return
	}
	if st.IsDir() != dir {
		t.Errorf("%s: directory %v, want %v", path, st.IsDir(), dir)
	}
}

// TestCompose checks docker-compose.yml without a Docker engine: it parses,
// every file and build context it names exists, the configuration it
// mounts into rcbridge passes -check-config, and the services agree with
// each other (who dials where, which ServerUris are allowed, which ports
// are published, which certificate is trusted).
func TestCompose(t *testing.T) {
	root := repoRoot(t)
	data, err := os.ReadFile(filepath.Join(root, "docker-compose.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var cf composeFile
	if err := yaml.Unmarshal(data, &cf); err != nil {
		t.Fatalf("docker-compose.yml: %v", err)
	}
	for _, name := range []string{"nats", "mosquitto", "rcbridge", "rcsim-line1", "rcsim-line2", "opcua-node"} {
		if _, ok := cf.Services[name]; !ok {
			t.Errorf("no service %q", name)
		}
	}
	built := map[string]bool{}
	for _, s := range cf.Services {
		if s.Build != nil && s.Image != "" {
			built[s.Image] = true
		}
	}
	for name, s := range cf.Services {
		if s.Build != nil {
			ctx := filepath.Join(root, s.Build.Context)
			exists(t, ctx, true)
			df := s.Build.DockerfileInline
			if df == "" {
				b, err := os.ReadFile(filepath.Join(ctx, cmp(s.Build.Dockerfile, "Dockerfile")))
				if err != nil {
					t.Errorf("service %s: %v", name, err)
				}
				df = string(b)
			}
			srcs := copySources(t, df)
			if len(srcs) == 0 {
				t.Errorf("service %s: its Dockerfile copies nothing", name)
			}
			for _, src := range srcs {
				exists(t, filepath.Join(ctx, src), src == ".")
			}
		} else if s.Image == "" {
			t.Errorf("service %s: neither build nor image", name)
		} else if strings.HasPrefix(s.Image, "rcbridge:") && !built[s.Image] {
			t.Errorf("service %s: image %s is built by no service", name, s.Image)
		}
		for _, m := range s.mounts(t) {
			if m.bind {
				p := filepath.Join(root, m.source)
				st, err := os.Stat(p)
				if err != nil {
					t.Errorf("service %s mounts %v", name, err)
				} else if st.IsDir() {
					t.Errorf("service %s mounts the directory %s; the stack mounts single files", name, m.source)
				}
			} else if _, ok := cf.Volumes[m.source]; !ok {
				t.Errorf("service %s: volume %q not declared", name, m.source)
			}
		}
		for _, dep := range s.dependsOn(t) {
			if _, ok := cf.Services[dep]; !ok {
				t.Errorf("service %s depends on unknown service %q", name, dep)
			}
		}
	}

	// The rcbridge configuration: mounted where -config points, valid, and
	// consistent with the other services.
	rb := cf.Services["rcbridge"]
	cfgPath := flagValues(rb.Command, "-config")
	if len(cfgPath) != 1 {
		t.Fatalf("rcbridge command %q: want one -config", rb.Command)
	}
	var hostConfig string
	for _, m := range rb.mounts(t) {
		if m.target == cfgPath[0] && m.bind {
			hostConfig = filepath.Join(root, m.source)
		}
	}
	if hostConfig == "" {
		t.Fatalf("rcbridge: nothing mounted at %s", cfgPath[0])
	}
	out, err := exec.Command(binaries.path(t, "./cmd/rcbridge"), "-check-config", hostConfig).CombinedOutput()
	if err != nil {
		t.Fatalf("-check-config %s: %v\n%s", hostConfig, err, out)
	}
	cfg, err := config.Load(hostConfig, nil)
	if err != nil {
		t.Fatal(err)
	}
	allowed := map[string]config.Server{}
	for _, s := range cfg.Servers {
		allowed[s.URI] = s
	}
	_, listenPort, _ := net.SplitHostPort(cfg.Listener.Address)
	_, httpPort, _ := net.SplitHostPort(cfg.HTTP.Address)
	for _, p := range []string{listenPort, httpPort} {
		if !slices.ContainsFunc(rb.Ports, func(s string) bool { return strings.HasSuffix(s, ":"+p) }) {
			t.Errorf("rcbridge does not publish port %s (ports %q)", p, rb.Ports)
		}
	}
	wantURL := "opc.tcp://rcbridge:" + listenPort
	if cfg.Bus.Kind == config.BusNATS && !slices.ContainsFunc(cfg.Bus.NATS.URLs, func(u string) bool { return strings.Contains(u, "//nats:") }) {
		t.Errorf("bus.nats.urls %q: not the nats service", cfg.Bus.NATS.URLs)
	}

	for _, name := range []string{"rcsim-line1", "rcsim-line2"} {
		s := cf.Services[name]
		if got := flagValues(s.Command, "-connect"); !slices.Equal(got, []string{wantURL}) {
			t.Errorf("%s dials %q, want %s", name, got, wantURL)
		}
		uri := flagValues(s.Command, "-server-uri")
		if len(uri) != 1 {
			t.Errorf("%s: no -server-uri", name)
		} else if srv, ok := allowed[uri[0]]; !ok || srv.SecurityPolicy != config.PolicyNone {
			t.Errorf("%s: ServerUri %q not allowed with security None (rcsim serves None only)", name, uri[0])
		}
	}

	// node-opcua: its config, whom it dials, and the bridge trusting its
	// certificate from the shared PKI volume.
	on := cf.Services["opcua-node"]
	var nodeCfg struct {
		PKIDir         string `json:"pkiDir"`
		ApplicationURI string `json:"applicationUri"`
		ReverseConnect struct {
			Clients []string `json:"clients"`
		} `json:"reverseConnect"`
	}
	var nodeVolume string
	for _, m := range on.mounts(t) {
		if m.bind && strings.HasSuffix(m.source, ".json") {
			b, err := os.ReadFile(filepath.Join(root, m.source))
			if err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(b, &nodeCfg); err != nil {
				t.Fatalf("%s: %v", m.source, err)
			}
			if !strings.Contains(on.Build.DockerfileInline, m.target) && !slices.Contains(on.Command, m.target) {
				t.Errorf("opcua-node does not start with its mounted config %s", m.target)
			}
		}
	}
	for _, m := range on.mounts(t) {
		if !m.bind && m.target == nodeCfg.PKIDir {
			nodeVolume = m.source
		}
	}
	if !slices.Equal(nodeCfg.ReverseConnect.Clients, []string{wantURL}) {
		t.Errorf("node-opcua dials %q, want %s", nodeCfg.ReverseConnect.Clients, wantURL)
	}
	srv, ok := allowed[nodeCfg.ApplicationURI]
	if !ok || srv.SecurityPolicy == config.PolicyNone {
		t.Fatalf("node-opcua's ApplicationUri %q is not allowed with security", nodeCfg.ApplicationURI)
	}
	trusted := false
	for _, m := range rb.mounts(t) {
		if m.source == nodeVolume && strings.HasPrefix(srv.TrustDir, m.target+"/") {
			trusted = strings.TrimPrefix(srv.TrustDir, m.target) == "/server/own/certs"
		}
	}
	if !trusted {
		t.Errorf("servers %q trust_dir %q is not node-opcua's own certificate directory in volume %q", srv.URI, srv.TrustDir, nodeVolume)
	}

	conf, err := os.ReadFile(filepath.Join(root, "compose", "mosquitto.conf"))
	if err != nil || !strings.Contains(string(conf), "\nset_tcp_nodelay true\n") {
		t.Errorf("compose/mosquitto.conf lacks set_tcp_nodelay true (%v)", err)
	}
}

func cmp(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
