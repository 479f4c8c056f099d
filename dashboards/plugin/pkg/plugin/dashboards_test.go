package plugin

import (
	"bytes"
	"encoding/json"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/grafana/grafana-plugin-sdk-go/backend"
	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/stretchr/testify/require"
)

// The dashboards in dashboards/json are checked four ways here: against the JSON Schema of a
// v1 dashboard generated from @grafana/schema (dashboards/schema), for layout (unique panel ids,
// no overlapping panels), for links (every link to a dashboard names one that exists and
// variables it has), and by running every query that goes through the plugin, template
// variables substituted, against the fixture's API. The Prometheus queries of the pipeline
// dashboard are checked in metrics_test.go.

const (
	dashboardsDir = "../../../json"
	schemaFile    = "../../../schema/dashboard.schema.json"
)

// dashboard is the part of a dashboard's JSON the tests read.
type dashboard struct {
	file       string
	UID        string   `json:"uid"`
	Title      string   `json:"title"`
	Schema     int      `json:"schemaVersion"`
	Tags       []string `json:"tags"`
	Panels     []panel  `json:"panels"`
	Templating struct {
		List []variable `json:"list"`
	} `json:"templating"`
	raw []byte
}

type panel struct {
	ID         int      `json:"id"`
	Type       string   `json:"type"`
	Title      string   `json:"title"`
	GridPos    gridPos  `json:"gridPos"`
	Datasource *dsRef   `json:"datasource"`
	Targets    []target `json:"targets"`
	Panels     []panel  `json:"panels"` // a row's collapsed panels
}

type gridPos struct{ H, W, X, Y int }

type dsRef struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

// target is a panel query; JSON keeps everything so it can be sent as the query model.
type target map[string]any

func (t target) datasource() dsRef {
	var r dsRef
	if m, ok := t["datasource"].(map[string]any); ok {
		r.Type, _ = m["type"].(string)
		r.UID, _ = m["uid"].(string)
	}
	return r
}

type variable struct {
	Name       string          `json:"name"`
	Type       string          `json:"type"`
	Query      json.RawMessage `json:"query"`
	Datasource *dsRef          `json:"datasource"`
	IncludeAll bool            `json:"includeAll"`
	AllValue   string          `json:"allValue"`
}

func loadDashboards(t *testing.T) []dashboard {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dashboardsDir, "*.json"))
	require.NoError(t, err)
	require.Len(t, files, 4, "SOC overview, agent drill-down, session explorer, pipeline health")
	var out []dashboard
	for _, f := range files {
		raw, err := os.ReadFile(f)
		require.NoError(t, err)
		d := dashboard{file: filepath.Base(f), raw: raw}
		dec := json.NewDecoder(bytes.NewReader(raw))
		require.NoError(t, dec.Decode(&d), f)
		out = append(out, d)
	}
	return out
}

// allPanels flattens rows' collapsed panels into the list.
func allPanels(ps []panel) []panel {
	var out []panel
	for _, p := range ps {
		out = append(out, p)
		out = append(out, allPanels(p.Panels)...)
	}
	return out
}

func compileDashboardSchema(t *testing.T) *jsonschema.Schema {
	t.Helper()
	f, err := os.Open(schemaFile)
	require.NoError(t, err)
	defer f.Close()
	doc, err := jsonschema.UnmarshalJSON(f)
	require.NoError(t, err)
	c := jsonschema.NewCompiler()
	require.NoError(t, c.AddResource("dashboard.schema.json", doc))
	s, err := c.Compile("dashboard.schema.json")
	require.NoError(t, err)
	return s
}

func TestDashboardsMatchSchema(t *testing.T) {
	schema := compileDashboardSchema(t)
	for _, d := range loadDashboards(t) {
		t.Run(d.file, func(t *testing.T) {
			inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(d.raw))
			require.NoError(t, err)
			require.NoError(t, schema.Validate(inst))
		})
	}
	// The schema is strict where @grafana/schema is: a misspelt key fails.
	for name, broken := range map[string]func(map[string]any){
		"misspelt panel key": func(d map[string]any) { d["panels"].([]any)[0].(map[string]any)["gridpos"] = map[string]any{} },
		"gridPos without h": func(d map[string]any) {
			delete(d["panels"].([]any)[0].(map[string]any)["gridPos"].(map[string]any), "h")
		},
		"no schemaVersion": func(d map[string]any) { delete(d, "schemaVersion") },
		"bad variable type": func(d map[string]any) {
			d["templating"].(map[string]any)["list"].([]any)[0].(map[string]any)["type"] = "dropdown"
		},
	} {
		t.Run("rejects "+name, func(t *testing.T) {
			d := loadDashboards(t)[0]
			var m map[string]any
			require.NoError(t, json.Unmarshal(d.raw, &m))
			broken(m)
			raw, err := json.Marshal(m)
			require.NoError(t, err)
			inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
			require.NoError(t, err)
			require.Error(t, schema.Validate(inst))
		})
	}
}

func TestDashboardsLayout(t *testing.T) {
	uids := map[string]bool{}
	for _, d := range loadDashboards(t) {
		t.Run(d.file, func(t *testing.T) {
			require.Equal(t, 42, d.Schema, "schemaVersion")
			require.NotEmpty(t, d.Title)
			require.Contains(t, d.Tags, "mcpwatch", "the dashboards link to each other by tag")
			require.True(t, strings.HasPrefix(d.UID, "mcpwatch-"), "uid %q", d.UID)
			require.False(t, uids[d.UID], "uid %q used twice", d.UID)
			uids[d.UID] = true

			ids := map[int]string{}
			ps := allPanels(d.Panels)
			require.NotEmpty(t, ps)
			for _, p := range ps {
				require.Positive(t, p.ID, "panel %q has no id", p.Title)
				require.NotContains(t, ids, p.ID, "panel id %d used by %q and %q", p.ID, ids[p.ID], p.Title)
				ids[p.ID] = p.Title
				g := p.GridPos
				require.True(t, g.W > 0 && g.H > 0 && g.X >= 0 && g.Y >= 0 && g.X+g.W <= 24,
					"panel %q gridPos %+v must lie within the 24 columns", p.Title, g)
				if p.Type != "row" {
					require.NotEmpty(t, p.Targets, "panel %q has no query", p.Title)
				}
			}
			for i, a := range ps {
				for _, b := range ps[i+1:] {
					overlap := a.GridPos.X < b.GridPos.X+b.GridPos.W && b.GridPos.X < a.GridPos.X+a.GridPos.W &&
						a.GridPos.Y < b.GridPos.Y+b.GridPos.H && b.GridPos.Y < a.GridPos.Y+a.GridPos.H
					require.False(t, overlap, "panels %q %+v and %q %+v overlap", a.Title, a.GridPos, b.Title, b.GridPos)
				}
			}
		})
	}
}

// linkRE finds links to mcpwatch dashboards: /d/<uid>/<slug>?<query>.
var linkRE = regexp.MustCompile(`/d/([a-z0-9-]+)/[a-z0-9-]+\?([^"]*)`)

func TestDashboardLinks(t *testing.T) {
	ds := loadDashboards(t)
	vars := map[string][]string{}
	for _, d := range ds {
		for _, v := range d.Templating.List {
			vars[d.UID] = append(vars[d.UID], v.Name)
		}
	}
	links := 0
	for _, d := range ds {
		for _, m := range linkRE.FindAllStringSubmatch(string(d.raw), -1) {
			links++
			target, query := m[1], m[2]
			require.Contains(t, vars, target, "%s links to dashboard %q, which does not exist", d.file, target)
			q, err := url.ParseQuery(query)
			require.NoError(t, err)
			for k := range q {
				if name, ok := strings.CutPrefix(k, "var-"); ok {
					require.Contains(t, vars[target], name, "%s links to %s with variable %q it lacks", d.file, target, name)
				}
			}
			// ${agent:queryparam} expands to var-agent=…: the variable must exist there too.
			for _, qp := range regexp.MustCompile(`\$\{(\w+):queryparam\}`).FindAllStringSubmatch(query, -1) {
				require.Contains(t, vars[target], qp[1])
			}
		}
	}
	require.GreaterOrEqual(t, links, 8, "the overview links to the drill-down and the session explorer")
}

// preferred are the variable values the query tests pick: the fixture's exfiltrating agent and
// its session, so that every panel has something to show.
var preferred = map[string]string{
	"agent": "research-agent", "server": "fs", "tool": "read_file", "session": "research-exfil",
}

var varRE = regexp.MustCompile(`\$\{(\w+)(?::\w+)?\}|\$(\w+)|\[\[(\w+)\]\]`)

// substitute replaces template variables in every string of v, as Grafana's template service
// does before a query reaches the plugin. An unknown variable fails the test.
func substitute(t *testing.T, v any, values map[string]string) any {
	t.Helper()
	switch x := v.(type) {
	case string:
		return varRE.ReplaceAllStringFunc(x, func(m string) string {
			sm := varRE.FindStringSubmatch(m)
			name := sm[1] + sm[2] + sm[3]
			val, ok := values[name]
			require.True(t, ok, "unknown template variable %q in %q", name, x)
			return val
		})
	case map[string]any:
		out := map[string]any{}
		for k, e := range x {
			out[k] = substitute(t, e, values)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = substitute(t, e, values)
		}
		return out
	}
	return v
}

// runQuery sends one query model through the plugin as Grafana would (over the fixture's second
// day, a panel 1,000 points wide) and returns the response.
func runQuery(t *testing.T, d *Datasource, model map[string]any) backend.DataResponse {
	t.Helper()
	raw, err := json.Marshal(model)
	require.NoError(t, err)
	qt, _ := model["queryType"].(string)
	resp, err := d.QueryData(t.Context(), &backend.QueryDataRequest{Queries: []backend.DataQuery{{
		RefID: "A", QueryType: qt, JSON: raw, TimeRange: day2,
		Interval: day2.Duration() / 1000, MaxDataPoints: 1000,
	}}})
	require.NoError(t, err)
	return resp.Responses["A"]
}

func rowCount(t *testing.T, dr backend.DataResponse) int {
	t.Helper()
	n := 0
	for _, f := range dr.Frames {
		rows, err := f.RowLen()
		require.NoError(t, err)
		n += rows
	}
	return n
}

// TestDashboardQueries runs every query of every panel (and every template variable) that goes
// through the plugin against the fixture's API, once with the variables that allow it set to
// All and once with specific values; each must answer frames with rows and no error.
func TestDashboardQueries(t *testing.T) {
	d := newTestDatasource(t)
	for _, db := range loadDashboards(t) {
		for _, mode := range []string{"all", "specific"} {
			t.Run(db.file+"/"+mode, func(t *testing.T) {
				values := map[string]string{"ds": "mcpwatch", "prom": "mcpwatch-prometheus"}
				for _, v := range db.Templating.List {
					if v.Type == "datasource" {
						require.Contains(t, values, v.Name)
						continue
					}
					require.Equal(t, "query", v.Type, "variable %s", v.Name)
					require.NotNil(t, v.Datasource, "variable %s", v.Name)
					require.Equal(t, dsRef{Type: ID, UID: "${ds}"}, *v.Datasource, "variable %s uses the plugin", v.Name)
					var model map[string]any
					require.NoError(t, json.Unmarshal(v.Query, &model), "variable %s: the query is the plugin's query model", v.Name)
					model = substitute(t, model, values).(map[string]any)
					dr := runQuery(t, d, model)
					require.NoError(t, dr.Error, "variable %s", v.Name)
					opts := variableValues(t, dr)
					require.NotEmpty(t, opts, "variable %s has no values", v.Name)
					want, ok := preferred[v.Name]
					require.True(t, ok, "no preferred value for variable %s", v.Name)
					require.Contains(t, opts, want, "variable %s", v.Name)
					values[v.Name] = want
					if mode == "all" && v.IncludeAll {
						require.Equal(t, "*", v.AllValue, "variable %s: All must reach the plugin as *", v.Name)
						values[v.Name] = v.AllValue
					}
				}
				queries := 0
				for _, p := range allPanels(db.Panels) {
					for _, tg := range p.Targets {
						ds := tg.datasource()
						if ds.Type != ID {
							continue
						}
						require.Equal(t, "${ds}", ds.UID, "panel %q: use the ds variable, not a fixed uid", p.Title)
						queries++
						model := substitute(t, map[string]any(tg), values).(map[string]any)
						dr := runQuery(t, d, model)
						require.NoError(t, dr.Error, "panel %q query %v", p.Title, model)
						require.NotEmpty(t, dr.Frames, "panel %q", p.Title)
						require.Positive(t, rowCount(t, dr), "panel %q query %v returned no rows", p.Title, model)
						if len(p.Targets) == 1 {
							checkFieldReferences(t, db, p, dr)
						}
					}
				}
				if db.UID != "mcpwatch-pipeline" {
					require.Positive(t, queries)
				}
			})
		}
	}
}

// variableValues reads the options Grafana would offer: the "text" field, else the first
// string field (Grafana's toMetricFindValues).
func variableValues(t *testing.T, dr backend.DataResponse) []string {
	t.Helper()
	require.Len(t, dr.Frames, 1)
	f := dr.Frames[0]
	idx := -1
	for i, fl := range f.Fields {
		if fl.Type().ItemTypeString() != "string" {
			continue
		}
		if idx < 0 || fl.Name == "text" {
			idx = i
		}
	}
	require.GreaterOrEqual(t, idx, 0, "no string field to take values from")
	var out []string
	for i := range f.Fields[idx].Len() {
		out = append(out, f.Fields[idx].At(i).(string))
	}
	return out
}

// TestDashboardQueryTypesCovered makes sure every query type is used by a panel or a variable,
// so none ships without a dashboard exercising it.
func TestDashboardQueryTypesCovered(t *testing.T) {
	used := map[string]bool{}
	for _, db := range loadDashboards(t) {
		for _, p := range allPanels(db.Panels) {
			for _, tg := range p.Targets {
				if qt, ok := tg["queryType"].(string); ok {
					used[qt] = true
				}
			}
		}
		for _, v := range db.Templating.List {
			var m map[string]any
			if json.Unmarshal(v.Query, &m) == nil {
				if qt, ok := m["queryType"].(string); ok {
					used[qt] = true
				}
			}
		}
	}
	var missing []string
	for _, qt := range QueryTypes {
		if !used[qt] {
			missing = append(missing, qt)
		}
	}
	sort.Strings(missing)
	require.Empty(t, missing, "query types no dashboard uses")
}

// checkFieldReferences checks that what a panel says about fields names fields the plugin
// answers: override matchers (byName matches a field's name or display name, byRegexp its
// display name, as Grafana does), the stat's reduceOptions.fields, filterFieldsByName and a
// table's sortBy. A typo there is silently ignored by Grafana, so this is where it is caught.
func checkFieldReferences(t *testing.T, db dashboard, p panel, dr backend.DataResponse) {
	t.Helper()
	names, display := map[string]bool{}, map[string]bool{}
	for _, f := range dr.Frames {
		for _, fl := range f.Fields {
			names[fl.Name] = true
			dn := fl.Name
			if fl.Config != nil && fl.Config.DisplayNameFromDS != "" {
				dn = fl.Config.DisplayNameFromDS
			}
			display[dn] = true
		}
	}
	matchDisplay := func(pattern string) bool {
		re, err := regexp.Compile(strings.TrimSuffix(strings.TrimPrefix(pattern, "/"), "/"))
		require.NoError(t, err, "panel %q: pattern %q", p.Title, pattern)
		for n := range display {
			if re.MatchString(n) {
				return true
			}
		}
		return false
	}
	raw := panelJSON(t, db, p.ID)
	var cfg struct {
		FieldConfig struct {
			Overrides []struct {
				Matcher struct {
					ID      string `json:"id"`
					Options string `json:"options"`
				} `json:"matcher"`
			} `json:"overrides"`
		} `json:"fieldConfig"`
		Options struct {
			ReduceOptions struct {
				Fields string `json:"fields"`
			} `json:"reduceOptions"`
			SortBy []struct {
				DisplayName string `json:"displayName"`
			} `json:"sortBy"`
		} `json:"options"`
		Transformations []struct {
			ID      string `json:"id"`
			Options struct {
				Include struct {
					Names []string `json:"names"`
				} `json:"include"`
			} `json:"options"`
		} `json:"transformations"`
	}
	require.NoError(t, json.Unmarshal(raw, &cfg))
	known := func(n string) bool { return names[n] || display[n] }
	for _, o := range cfg.FieldConfig.Overrides {
		switch o.Matcher.ID {
		case "byName":
			// Series keys come from the data: a severity or status without data that day has no
			// field, so only fields of types the panel could never answer are errors.
			if isSeriesKey(o.Matcher.Options) {
				continue
			}
			require.True(t, known(o.Matcher.Options), "panel %q: override for field %q, which the query does not answer (%v)", p.Title, o.Matcher.Options, keys(display))
		case "byRegexp":
			require.True(t, matchDisplay(o.Matcher.Options), "panel %q: override pattern %q matches no field", p.Title, o.Matcher.Options)
		}
	}
	if f := cfg.Options.ReduceOptions.Fields; f != "" {
		require.True(t, matchDisplay(f), "panel %q: reduceOptions.fields %q matches no field's display name (%v)", p.Title, f, keys(display))
	}
	for _, s := range cfg.Options.SortBy {
		require.True(t, display[s.DisplayName], "panel %q: sortBy %q is no field's display name", p.Title, s.DisplayName)
	}
	for _, tr := range cfg.Transformations {
		for _, n := range tr.Options.Include.Names {
			require.True(t, known(n), "panel %q: %s names field %q, which the query does not answer", p.Title, tr.ID, n)
		}
	}
}

// isSeriesKey reports whether name is a severity or delivery status: series keys the fixture
// may not have in every range.
func isSeriesKey(name string) bool {
	switch name {
	case "critical", "high", "medium", "low", "info", "delivered", "dead_lettered", "replayed":
		return true
	}
	return false
}

func keys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// panelJSON returns one panel's JSON from a dashboard.
func panelJSON(t *testing.T, db dashboard, id int) json.RawMessage {
	t.Helper()
	var d struct {
		Panels []json.RawMessage `json:"panels"`
	}
	require.NoError(t, json.Unmarshal(db.raw, &d))
	for _, raw := range d.Panels {
		var p struct {
			ID int `json:"id"`
		}
		require.NoError(t, json.Unmarshal(raw, &p))
		if p.ID == id {
			return raw
		}
	}
	require.Failf(t, "no panel", "panel %d", id)
	return nil
}
