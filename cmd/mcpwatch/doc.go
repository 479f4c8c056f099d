// Command mcpwatch is the only mcpwatch binary: `mcpwatch run` starts the pipeline (every role
// by default, or the roles named by -target), and the other subcommands query, migrate and check
// configuration. `mcpwatch --help` lists them.
package main
