// Package pipeline holds the contracts every mcpwatch stage follows: the Component lifecycle and
// the Settings passed to constructors.
package pipeline
