package config

import (
	"strings"
	"testing"
)

func brokerInputs() *Inputs {
	return &Inputs{Broker: "https://cfmint.example.com/", Preset: "workers-deploy", TTL: "15m", IPFilter: "runner", TokenOwner: "account"}
}

func TestValidateBroker(t *testing.T) {
	t.Parallel()
	c, err := Validate(brokerInputs(), Context{Repository: "octo/site", RunID: "7", RunAttempt: "1"})
	if err != nil {
		t.Fatal(err)
	}
	if c.Broker != "https://cfmint.example.com" || c.Audience != "https://cfmint.example.com" || c.BootstrapToken != "" || c.AccountID != "" {
		t.Errorf("config = broker %q audience %q account %q", c.Broker, c.Audience, c.AccountID)
	}
	want := map[string]string{"preset": "workers-deploy", "ttl": "15m", "ip-filter": "runner"}
	if len(c.BrokerRequest) != len(want) {
		t.Errorf("request = %v, want %v", c.BrokerRequest, want)
	}
	for k, v := range want {
		if c.BrokerRequest[k] != v {
			t.Errorf("request = %v, want %v", c.BrokerRequest, want)
		}
	}

	in := brokerInputs()
	in.Audience = "cfmint"
	in.Broker = "http://127.0.0.1:8080"
	in.Preset, in.TokenID = "", "0123456789abcdef0123456789abcdef"
	c, err = Validate(in, Context{})
	if err != nil {
		t.Fatal(err)
	}
	if c.Mode != ModeRevoke || c.Audience != "cfmint" || c.Broker != "http://127.0.0.1:8080" {
		t.Errorf("revoke through a broker: mode %v audience %q broker %q", c.Mode, c.Audience, c.Broker)
	}
}

func TestParseBroker(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"https://cfmint.example.com":       "https://cfmint.example.com",
		" https://cfmint.example.com/x/ ":  "https://cfmint.example.com/x",
		"http://127.0.0.1:8080/":           "http://127.0.0.1:8080",
		"http://[::1]:9":                   "http://[::1]:9",
		"http://localhost":                 "http://localhost",
		"http://cfmint.example.com":        "is http to",
		"ftp://cfmint.example.com":         "has scheme ftp",
		"cfmint.example.com":               "not an absolute URL",
		"https://u:hunter2@cfmint.example": "holds user information",
		"https://cfmint.example.com/?a=b":  "has a query",
		"https://cfmint.example.com/#x":    "has a fragment",
		"":                                 "not an absolute URL",
	} {
		got, err := ParseBroker(in)
		if strings.HasPrefix(want, "http") {
			if err != nil || got != want {
				t.Errorf("ParseBroker(%q) = %q, %v; want %q", in, got, err, want)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseBroker(%q) error = %v; want one saying %q", in, err, want)
		}
		if err != nil && strings.Contains(err.Error(), "hunter2") {
			t.Errorf("ParseBroker error %q shows the password", err)
		}
	}
}

func TestValidateBrokerRejects(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		change func(*Inputs)
		want   string
	}{
		{"both", func(in *Inputs) { in.BootstrapToken = "cfat_secretsecret" }, `input "broker": cannot be combined with bootstrap-token`},
		{"account", func(in *Inputs) { in.AccountID = "0123456789abcdef0123456789abcdef" }, `input "account-id": is set, but with broker the broker's rule decides the account`},
		{"user", func(in *Inputs) { in.TokenOwner = "user" }, `input "token-owner": is user, but with broker`},
		{"sweep", func(in *Inputs) { in.Preset, in.Sweep = "", "true" }, `input "sweep": cannot be combined with broker`},
		{"dry-run", func(in *Inputs) { in.DryRun = "true" }, `input "dry-run": cannot be combined with broker: the broker decides and mints in one exchange`},
		{"name", func(in *Inputs) { in.Name = "mine" }, `input "name": cannot be combined with broker`},
		{"lasting", func(in *Inputs) { in.AllowLastingAccess = "true" }, `input "allow-lasting-access": cannot be combined with broker`},
		{"bad url", func(in *Inputs) { in.Broker = "http://cfmint.example.com" }, `input "broker": "http://cfmint.example.com" is http to`},
		{"audience alone", func(in *Inputs) {
			in.Broker, in.Audience, in.BootstrapToken, in.AccountID = "", "x", "cfat_secretsecret", "0123456789abcdef0123456789abcdef"
		}, `input "audience": is set but broker is empty`},
		{"neither", func(in *Inputs) { in.Broker, in.AccountID = "", "0123456789abcdef0123456789abcdef" }, `or set broker to mint through a cfmint broker instead`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			in := brokerInputs()
			tc.change(in)
			_, err := Validate(in, Context{Repository: "octo/site"})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Validate error = %v; want one saying %s", err, tc.want)
			}
			if strings.Contains(err.Error(), "cfat_secretsecret") {
				t.Errorf("error %q shows the bootstrap token", err)
			}
		})
	}
}
