package emulator

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestConfigRoundTrip(t *testing.T) {
	want := config{
		Interface:  "eth1",
		Backend:    backendUserspace,
		Generation: 7,
		Impairment: Impairment{Delay: 50 * time.Millisecond, Jitter: 1500 * time.Microsecond, Loss: 12.5, RateKbps: 1000, Corrupt: 0.01},
	}
	path := filepath.Join(t.TempDir(), "emulator-eth1.json")
	if err := writeConfig(filesOfConfig(path), want); err != nil {
		t.Fatal(err)
	}
	got, err := readConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Errorf("read back %+v, want %+v", got, want)
	}
	b, _ := os.ReadFile(path)
	if !strings.Contains(string(b), `"delay": "50ms"`) {
		t.Errorf("config file does not hold delay as a duration string:\n%s", b)
	}
}

func TestParseConfigErrors(t *testing.T) {
	tests := []struct {
		name string
		data string
		want string // substring of the error
	}{
		{name: "not json", data: `delay 50ms`, want: "decode config"},
		{name: "unknown field", data: `{"interface":"eth1","backend":"userspace","delay":"1ms","dalay":"2ms"}`, want: `unknown field "dalay"`},
		{name: "trailing data", data: `{"interface":"eth1","backend":"userspace","delay":"1ms"} {}`, want: "trailing data"},
		{name: "bad duration", data: `{"interface":"eth1","backend":"userspace","delay":"50"}`, want: `config delay "50"`},
		{name: "bad interface", data: `{"interface":"eth/1","backend":"userspace","delay":"1ms"}`, want: `interface name "eth/1" is not valid`},
		{name: "long interface", data: `{"interface":"abcdefghijklmnop","backend":"userspace","delay":"1ms"}`, want: "is not valid"},
		{name: "no interface", data: `{"backend":"userspace","delay":"1ms"}`, want: `interface name "" is not valid`},
		{name: "bad backend", data: `{"interface":"eth1","backend":"ebpf","delay":"1ms"}`, want: `backend "ebpf"`},
		{name: "no impairment", data: `{"interface":"eth1","backend":"userspace"}`, want: "has no impairment"},
		{name: "bad loss", data: `{"interface":"eth1","backend":"userspace","loss":120}`, want: "loss 120 out of range 0..100"},
		{name: "negative jitter", data: `{"interface":"eth1","backend":"netem","jitter":"-1ms"}`, want: "jitter -1ms out of range"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseConfig([]byte(tt.data))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("parseConfig() error = %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

// FuzzParseConfig checks that parseConfig never panics and that whatever it
// accepts survives marshal and parse unchanged. Corpus: testdata/fuzz.
func FuzzParseConfig(f *testing.F) {
	f.Add([]byte(`{"interface":"eth1","backend":"userspace","generation":3,"delay":"50ms","jitter":"5ms","loss":10,"rate_kbps":1000,"corrupt":0.5}`))
	f.Add([]byte(`{"interface":"e","backend":"netem","loss":1e-9}`))
	f.Add([]byte(`{"interface":"eth1","backend":"userspace","delay":"1m0s"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := parseConfig(data)
		if err != nil {
			return
		}
		b, err := c.marshal()
		if err != nil {
			t.Fatalf("marshal %+v: %v", c, err)
		}
		again, err := parseConfig(b)
		if err != nil {
			t.Fatalf("parse of marshalled %+v: %v\n%s", c, err, b)
		}
		if again != c {
			t.Fatalf("round trip changed config:\n got %+v\nwant %+v", again, c)
		}
	})
}
