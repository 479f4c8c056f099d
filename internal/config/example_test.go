package config_test

import (
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/mcpwatch/mcpwatch/internal/config"
)

// APIConfig is how a package's Config uses the loader: yaml tags, SetDefaults, and a Validate
// that reports every problem with its field path.
type APIConfig struct {
	// Listen is the address of the HTTP API.
	Listen string `yaml:"listen"`
	// ReadTimeout bounds reading one request.
	ReadTimeout time.Duration `yaml:"read_timeout"`
}

func (c *APIConfig) SetDefaults() {
	c.Listen = "127.0.0.1:7410"
	c.ReadTimeout = 10 * time.Second
}

func (c *APIConfig) Validate() error {
	var errs config.Errors
	if c.Listen == "" {
		errs.Add("listen", "must not be empty")
	}
	if c.ReadTimeout <= 0 {
		errs.Addf("read_timeout", "must be positive, got %s", c.ReadTimeout)
	}
	return errs.Err()
}

func ExampleDecode() {
	os.Setenv("EXAMPLE_API_LISTEN", "127.0.0.1:9410")
	defer os.Unsetenv("EXAMPLE_API_LISTEN")

	var c APIConfig
	err := config.Decode(strings.NewReader("listen: ${EXAMPLE_API_LISTEN}\n"), "api.yml", &c)
	fmt.Println(c.Listen, c.ReadTimeout, err)

	err = config.Decode(strings.NewReader("listen: \"\"\nread_timeout: 0s\n"), "api.yml", &c)
	fmt.Println(err)

	err = config.Decode(strings.NewReader("listen: x\nread_timeot: 1s\n"), "api.yml", &c)
	fmt.Println(err)
	// Output:
	// 127.0.0.1:9410 10s <nil>
	// api.yml: listen: must not be empty
	// api.yml: read_timeout: must be positive, got 0s
	// api.yml:2: field read_timeot not found in type config_test.APIConfig
}
