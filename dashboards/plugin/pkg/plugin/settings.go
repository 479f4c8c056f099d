package plugin

import (
	"context"
	"fmt"
	"net/url"
	"strings"

	"github.com/grafana/grafana-plugin-sdk-go/backend"
	"github.com/grafana/grafana-plugin-sdk-go/backend/httpclient"
)

// ID is the plugin id, as in plugin.json.
const ID = "mcpwatch-mcpwatch-datasource"

// TokenKey is the secureJsonData key holding the mcpwatch API bearer token (api.tokens).
const TokenKey = "token"

// Settings is one data source's configuration.
type Settings struct {
	// URL is the mcpwatch API base URL (the data source's URL field), e.g.
	// http://127.0.0.1:7410. A path is kept as a prefix, for an API behind a reverse proxy.
	URL *url.URL
	// Token is secureJsonData.token: sent as a bearer token when set. Never logged.
	Token string
	// HTTP carries Grafana's standard HTTP options from jsonData/secureJsonData: timeout
	// (seconds), tlsSkipVerify, tlsAuthWithCACert with secureJsonData.tlsCACert, serverName.
	HTTP httpclient.Options
}

// LoadSettings reads a data source's settings; errors name the offending field.
func LoadSettings(ctx context.Context, s backend.DataSourceInstanceSettings) (Settings, error) {
	u, err := parseBaseURL(s.URL)
	if err != nil {
		return Settings{}, err
	}
	opts, err := s.HTTPClientOptions(ctx)
	if err != nil {
		return Settings{}, fmt.Errorf("jsonData: %w", err)
	}
	return Settings{URL: u, Token: strings.TrimSpace(s.DecryptedSecureJSONData[TokenKey]), HTTP: opts}, nil
}

func parseBaseURL(raw string) (*url.URL, error) {
	raw = strings.TrimSpace(raw)
	if raw == "" {
		return nil, fmt.Errorf("url: required: the mcpwatch API address, e.g. http://127.0.0.1:7410")
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("url: %q must be an absolute http(s) URL like http://127.0.0.1:7410", raw)
	}
	if u.User != nil {
		return nil, fmt.Errorf("url: must not contain credentials; put the API token in the Token field")
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	u.RawPath, u.RawQuery, u.Fragment = "", "", ""
	return u, nil
}
