package plugin

import "time"

// The API v1 answers the plugin reads: the JSON forms of mcpwatch's store types. Only the fields
// the frames show are decoded, so the API may add fields without breaking the plugin.

type session struct {
	ID         string    `json:"session_id"`
	AgentID    string    `json:"agent_id"`
	ServerID   string    `json:"server_id"`
	ClientName string    `json:"client_name"`
	FirstSeen  time.Time `json:"first_seen"`
	LastSeen   time.Time `json:"last_seen"`
	Events     int64     `json:"events"`
	Errors     int64     `json:"errors"`
	Anomalies  int64     `json:"anomalies"`
	MaxScore   float64   `json:"max_score"`
	Tools      []string  `json:"tools"`
}

type sessionsResponse struct {
	Sessions   []session `json:"sessions"`
	NextCursor string    `json:"next_cursor"`
}

type eventFlag struct {
	Type     string `json:"type"`
	Severity string `json:"severity"`
	Path     string `json:"path"`
}

type event struct {
	ID            string      `json:"event_id"`
	ObservedAt    time.Time   `json:"observed_at"`
	AgentID       string      `json:"agent_id"`
	ServerID      string      `json:"server_id"`
	SessionID     string      `json:"session_id"`
	Direction     string      `json:"direction"`
	Kind          string      `json:"kind"`
	Method        string      `json:"method"`
	Target        string      `json:"target"`
	Status        string      `json:"status"`
	ErrorCode     int64       `json:"error_code"`
	LatencyMicros int64       `json:"latency_us"`
	RequestBytes  int64       `json:"request_bytes"`
	ResponseBytes int64       `json:"response_bytes"`
	ArgsShape     string      `json:"args_shape"`
	ArgsHash      string      `json:"args_hash"`
	ResultHash    string      `json:"result_hash"`
	TraceID       string      `json:"trace_id"`
	Flags         []eventFlag `json:"flags"`
}

type eventsResponse struct {
	SessionID string  `json:"session_id"`
	Events    []event `json:"events"`
}

type explanation struct {
	Summary  string `json:"summary"`
	Observed string `json:"observed"`
	Typical  string `json:"typical"`
	Model    string `json:"model"`
}

type anomaly struct {
	ID          string      `json:"anomaly_id"`
	AgentID     string      `json:"agent_id"`
	SessionID   string      `json:"session_id"`
	ServerID    string      `json:"server_id"`
	Kind        string      `json:"kind"`
	Subject     string      `json:"subject"`
	Score       float64     `json:"score"`
	Severity    string      `json:"severity"`
	Title       string      `json:"title"`
	Explanation explanation `json:"explanation"`
	FirstSeen   time.Time   `json:"first_seen"`
	LastSeen    time.Time   `json:"last_seen"`
	Count       int64       `json:"count"`
	Learning    bool        `json:"learning"`
	Tags        []string    `json:"tags"`
}

type anomaliesResponse struct {
	Anomalies  []anomaly `json:"anomalies"`
	NextCursor string    `json:"next_cursor"`
}

type agent struct {
	ID        string    `json:"agent_id"`
	FirstSeen time.Time `json:"first_seen"`
	LastSeen  time.Time `json:"last_seen"`
	Events    int64     `json:"events"`
	Errors    int64     `json:"errors"`
	Sessions  int64     `json:"sessions"`
	Servers   []string  `json:"servers"`
	Tools     []string  `json:"tools"`
	Anomalies int64     `json:"anomalies"`
	MaxScore  float64   `json:"max_score"`
	Risk      float64   `json:"risk"`
}

type agentsResponse struct {
	Agents []agent `json:"agents"`
}

type band struct {
	HourOfWeek int     `json:"hour_of_week"`
	Expected   float64 `json:"expected"`
	Lower      float64 `json:"lower"`
	Upper      float64 `json:"upper"`
}

type quantiles struct {
	P50 float64 `json:"p50"`
	P90 float64 `json:"p90"`
	P99 float64 `json:"p99"`
}

type profile struct {
	AgentID   string    `json:"agent_id"`
	UpdatedAt time.Time `json:"updated_at"`
	Learning  bool      `json:"learning"`
	Rate      *struct {
		Unit string `json:"unit"`
		Band []band `json:"band"`
	} `json:"rate"`
	TopTools []struct {
		Tool  string  `json:"tool"`
		Calls int64   `json:"calls"`
		Share float64 `json:"share"`
	} `json:"top_tools"`
	TopTransitions []struct {
		From        string  `json:"from"`
		To          string  `json:"to"`
		Count       int64   `json:"count"`
		Probability float64 `json:"probability"`
	} `json:"top_transitions"`
	Sizes *struct {
		RequestBytes  *quantiles `json:"request_bytes"`
		ResponseBytes *quantiles `json:"response_bytes"`
	} `json:"sizes"`
}

type point struct {
	Time  time.Time `json:"time"`
	Value float64   `json:"value"`
}

type series struct {
	Key    string  `json:"key"`
	Points []point `json:"points"`
}

type seriesResponse struct {
	Metric string   `json:"metric"`
	By     string   `json:"by"`
	Step   string   `json:"step"`
	Series []series `json:"series"`
}

type delivery struct {
	ID        string    `json:"delivery_id"`
	AnomalyID string    `json:"anomaly_id"`
	AgentID   string    `json:"agent_id"`
	Kind      string    `json:"kind"`
	Severity  string    `json:"severity"`
	Sink      string    `json:"sink"`
	Status    string    `json:"status"`
	Attempts  int64     `json:"attempts"`
	Error     string    `json:"error"`
	Time      time.Time `json:"time"`
}

type deliveriesResponse struct {
	Deliveries []delivery `json:"deliveries"`
}

type valuesResponse struct {
	Values []string `json:"values"`
}
