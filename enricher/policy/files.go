package policy

import (
	"errors"
	"time"

	"github.com/mcpwatch/mcpwatch/enricher/inventory"
	"github.com/mcpwatch/mcpwatch/internal/config"
)

// DefaultReloadInterval is how often the files are checked for changes by default.
const DefaultReloadInterval = 5 * time.Second

// Files names the policy and inventory files; the enricher's configuration embeds it.
type Files struct {
	// PolicyFile is the policy (docs/policy.md). Empty: no policy, no policy_violation
	// anomalies.
	PolicyFile string `yaml:"policy_file"`
	// InventoryFile is the inventory (docs/policy.md). Empty: no inventory labels and no
	// unknown_agent anomalies.
	InventoryFile string `yaml:"inventory_file"`
	// ReloadInterval is how often both files are checked for changes (default 5s); SIGHUP
	// reloads them at once. An invalid new version is logged and the last good one kept.
	ReloadInterval time.Duration `yaml:"reload_interval"`
}

// SetDefaults fills zero values.
func (f *Files) SetDefaults() {
	if f.ReloadInterval == 0 {
		f.ReloadInterval = DefaultReloadInterval
	}
}

// Validate checks the fields; the files' contents are checked by Check, and when the engine
// loads them.
func (f Files) Validate() error {
	var errs config.Errors
	if f.ReloadInterval <= 0 {
		errs.Addf("reload_interval", "must be positive, got %s", f.ReloadInterval)
	}
	return errs.Err()
}

// Check loads the configured files and reports every problem in them, each line starting with
// the file's name and the line of the problem ("policy.yml:14: rules[2].tools[0]: …").
func (f Files) Check() error {
	var errs []error
	if f.PolicyFile != "" {
		if _, err := Load(f.PolicyFile); err != nil {
			errs = append(errs, err)
		}
	}
	if f.InventoryFile != "" {
		if _, err := inventory.Load(f.InventoryFile); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
