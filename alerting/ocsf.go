package alerting

import (
	"encoding/json"
	"math"
	"time"

	"github.com/mcpwatch/mcpwatch/schemas"
)

// OCSF Detection Finding constants (OCSF 1.5.0 and later: anomaly_analyses appeared in 1.5.0).
const (
	OCSFVersion          = "1.5.0"
	ocsfClassUID         = 2004 // Detection Finding
	ocsfCategoryUID      = 2    // Findings
	ocsfActivityCreate   = 1
	ocsfActivityUpdate   = 2
	ocsfStatusNew        = 1
	ocsfAnalyticBehavior = 2   // analytic.type_id Behavioral
	ocsfObservableOther  = 99  // observable.type_id Other
	ocsfTimespanInterval = 9   // timespan.type_id Time Interval
	ocsfMaxRelatedEvents = 100 // Anomaly v1 bounds evidence anyway; keep findings small
)

// ocsfFinding is the subset of the Detection Finding class mcpwatch fills.
type ocsfFinding struct {
	ActivityID      int                   `json:"activity_id"`
	ActivityName    string                `json:"activity_name"`
	AnomalyAnalyses []ocsfAnomalyAnalysis `json:"anomaly_analyses,omitempty"`
	CategoryName    string                `json:"category_name"`
	CategoryUID     int                   `json:"category_uid"`
	ClassName       string                `json:"class_name"`
	ClassUID        int                   `json:"class_uid"`
	Count           int                   `json:"count"`
	EndTime         int64                 `json:"end_time"`
	Evidences       []ocsfEvidence        `json:"evidences"`
	FindingInfo     ocsfFindingInfo       `json:"finding_info"`
	IsAlert         bool                  `json:"is_alert"`
	Message         string                `json:"message"`
	Metadata        ocsfMetadata          `json:"metadata"`
	Observables     []ocsfObservable      `json:"observables"`
	RiskScore       int                   `json:"risk_score"`
	Severity        string                `json:"severity"`
	SeverityID      int                   `json:"severity_id"`
	StartTime       int64                 `json:"start_time"`
	Status          string                `json:"status"`
	StatusID        int                   `json:"status_id"`
	Time            int64                 `json:"time"`
	TypeName        string                `json:"type_name"`
	TypeUID         int                   `json:"type_uid"`
	Unmapped        ocsfUnmapped          `json:"unmapped"`
}

type ocsfMetadata struct {
	CorrelationUID string      `json:"correlation_uid"`
	LogName        string      `json:"log_name"`
	Product        ocsfProduct `json:"product"`
	UID            string      `json:"uid"`
	Version        string      `json:"version"`
}

type ocsfProduct struct {
	Name       string `json:"name"`
	VendorName string `json:"vendor_name"`
	Version    string `json:"version"`
}

type ocsfFindingInfo struct {
	Analytic           ocsfAnalytic       `json:"analytic"`
	CreatedTime        int64              `json:"created_time"`
	Desc               string             `json:"desc,omitempty"`
	FirstSeenTime      int64              `json:"first_seen_time"`
	LastSeenTime       int64              `json:"last_seen_time"`
	ModifiedTime       int64              `json:"modified_time"`
	RelatedEvents      []ocsfRelatedEvent `json:"related_events,omitempty"`
	RelatedEventsCount int                `json:"related_events_count"`
	Title              string             `json:"title"`
	Types              []string           `json:"types"`
	UID                string             `json:"uid"`
}

type ocsfAnalytic struct {
	Name   string `json:"name"`
	Type   string `json:"type"`
	TypeID int    `json:"type_id"`
}

type ocsfRelatedEvent struct {
	UID string `json:"uid"`
}

type ocsfAnomalyAnalysis struct {
	AnalysisTargets []ocsfAnalysisTarget `json:"analysis_targets"`
	Anomalies       []ocsfAnomaly        `json:"anomalies"`
	Baselines       []ocsfAnomaly        `json:"baselines,omitempty"`
}

type ocsfAnalysisTarget struct {
	Name string `json:"name"`
	Type string `json:"type"`
}

// ocsfAnomaly is both the anomaly and the baseline object: they share their attributes.
type ocsfAnomaly struct {
	ObservationParameter string            `json:"observation_parameter"`
	ObservationType      string            `json:"observation_type"`
	ObservedPattern      string            `json:"observed_pattern,omitempty"`
	Observations         []ocsfObservation `json:"observations"`
}

type ocsfObservation struct {
	Count    int           `json:"count,omitempty"`
	Timespan *ocsfTimespan `json:"timespan,omitempty"`
	Value    string        `json:"value"`
}

type ocsfTimespan struct {
	Duration  int64  `json:"duration"`
	EndTime   int64  `json:"end_time"`
	StartTime int64  `json:"start_time"`
	Type      string `json:"type"`
	TypeID    int    `json:"type_id"`
}

type ocsfEvidence struct {
	Actor       ocsfActor     `json:"actor"`
	DstEndpoint *ocsfEndpoint `json:"dst_endpoint,omitempty"`
}

type ocsfActor struct {
	AppName string       `json:"app_name"`
	AppUID  string       `json:"app_uid"`
	Session *ocsfSession `json:"session,omitempty"`
}

type ocsfSession struct {
	UID string `json:"uid"`
}

type ocsfEndpoint struct {
	Name    string `json:"name"`
	SvcName string `json:"svc_name"`
}

type ocsfObservable struct {
	Name   string `json:"name"`
	Type   string `json:"type"`
	TypeID int    `json:"type_id"`
	Value  string `json:"value"`
}

// ocsfUnmapped keeps the Anomaly v1 fields OCSF has no attribute for.
type ocsfUnmapped struct {
	Kind        string  `json:"kind"`
	Subject     string  `json:"subject,omitempty"`
	Score       float64 `json:"score"`
	Observed    string  `json:"observed,omitempty"`
	Typical     string  `json:"typical,omitempty"`
	Probability float64 `json:"probability,omitempty"`
	// Tags is Anomaly v1's tags.
	Tags []string `json:"tags,omitempty"`
	// DeliveryID is also metadata.uid; here it sits beside the other mcpwatch fields.
	DeliveryID string  `json:"delivery_id"`
	Digest     *Digest `json:"digest,omitempty"`
}

// kindAnalysis says how each anomaly kind was found, in OCSF anomaly terms: the observation
// type (how it was analysed), the pattern seen, and what was measured.
type kindAnalysis struct {
	observationType, pattern, parameter string
}

var kindAnalyses = map[string]kindAnalysis{
	"new_tool":           {"Frequency Analysis", "UNSEEN", "tool called"},
	"rate_spike":         {"Volume Analysis", "SURGE", "requests per minute"},
	"rate_drop":          {"Volume Analysis", "LOW_VOLUME", "requests per minute"},
	"large_request":      {"Volume Analysis", "HIGH_VOLUME", "request size"},
	"large_response":     {"Volume Analysis", "HIGH_VOLUME", "response size"},
	"new_transition":     {"Sequence Analysis", "UNSEEN", "tool call transition"},
	"unlikely_step":      {"Sequence Analysis", "RARE", "tool call sequence"},
	"unusual_session":    {"Sequence Analysis", "RARE", "session"},
	"scan":               {"Frequency Analysis", "FREQUENT", "distinct tools and resources"},
	"campaign":           {"Association Analysis", "CORRELATED", "agents with the same anomaly"},
	"suspicious_content": {"Content Analysis", "SUSPICIOUS", "message content"},
	"tool_drift":         {"Deviation Analysis", "CHANGED", "tool definition"},
	"tool_shadowing":     {"Association Analysis", "CONFLICT", "tool name across servers"},
	KindDigest:           {"Frequency Analysis", "FREQUENT", "suppressed repeats"},
}

// analysisFor returns a kind's analysis; kinds the table does not know (the detector grows)
// are a generic deviation.
func analysisFor(kind string) kindAnalysis {
	if k, ok := kindAnalyses[kind]; ok {
		return k
	}
	return kindAnalysis{"Deviation Analysis", "ANOMALOUS", kind}
}

var ocsfSeverities = map[schemas.Severity]struct {
	id      int
	caption string
}{
	schemas.SeverityInfo:     {1, "Informational"},
	schemas.SeverityLow:      {2, "Low"},
	schemas.SeverityMedium:   {3, "Medium"},
	schemas.SeverityHigh:     {4, "High"},
	schemas.SeverityCritical: {5, "Critical"},
}

// OCSF renders an alert as an OCSF Detection Finding (class 2004). The first version of an
// anomaly (count 1) is activity Create (type_uid 200401); later versions of the same anomaly
// are Update (200402) of the finding whose finding_info.uid is the anomaly id. metadata.uid is
// the delivery id.
func OCSF(a Alert) ([]byte, error) {
	return json.Marshal(detectionFinding(a))
}

func detectionFinding(a Alert) ocsfFinding {
	an := a.Anomaly
	ms := func(t time.Time) int64 { return t.UnixMilli() }
	activity, activityName := ocsfActivityCreate, "Create"
	if an.Count > 1 {
		activity, activityName = ocsfActivityUpdate, "Update"
	}
	sev, ok := ocsfSeverities[an.Severity]
	if !ok {
		sev.id, sev.caption = 0, "Unknown"
	}
	ka := analysisFor(an.Kind)

	related := make([]ocsfRelatedEvent, 0, len(an.EvidenceEventIDs))
	for _, id := range an.EvidenceEventIDs[max(0, len(an.EvidenceEventIDs)-ocsfMaxRelatedEvents):] {
		related = append(related, ocsfRelatedEvent{UID: id})
	}
	actor := ocsfActor{AppName: an.AgentID, AppUID: an.AgentID}
	if an.SessionID != "" {
		actor.Session = &ocsfSession{UID: an.SessionID}
	}
	ev := ocsfEvidence{Actor: actor}
	observables := []ocsfObservable{{Name: "evidences[0].actor.app_uid", Type: "MCP Agent", TypeID: ocsfObservableOther, Value: an.AgentID}}
	if an.ServerID != "" {
		ev.DstEndpoint = &ocsfEndpoint{Name: an.ServerID, SvcName: "mcp"}
		observables = append(observables, ocsfObservable{Name: "evidences[0].dst_endpoint.name", Type: "MCP Server", TypeID: ocsfObservableOther, Value: an.ServerID})
	}
	if an.SessionID != "" {
		observables = append(observables, ocsfObservable{Name: "evidences[0].actor.session.uid", Type: "MCP Session", TypeID: ocsfObservableOther, Value: an.SessionID})
	}

	observed := an.Explanation.Observed
	if observed == "" {
		observed = an.Subject
	}
	analysis := ocsfAnomalyAnalysis{
		AnalysisTargets: []ocsfAnalysisTarget{{Name: an.AgentID, Type: "MCP Agent"}},
		Anomalies: []ocsfAnomaly{{
			ObservationParameter: ka.parameter,
			ObservationType:      ka.observationType,
			ObservedPattern:      ka.pattern,
			Observations: []ocsfObservation{{
				Value: observed,
				Count: an.Count,
				Timespan: &ocsfTimespan{
					StartTime: ms(an.FirstSeen), EndTime: ms(an.LastSeen),
					Duration: an.LastSeen.Sub(an.FirstSeen).Milliseconds(),
					TypeID:   ocsfTimespanInterval, Type: "Time Interval",
				},
			}},
		}},
	}
	if an.Explanation.Typical != "" {
		analysis.Baselines = []ocsfAnomaly{{
			ObservationParameter: ka.parameter,
			ObservationType:      ka.observationType,
			Observations:         []ocsfObservation{{Value: an.Explanation.Typical}},
		}}
	}
	if an.ServerID != "" {
		analysis.AnalysisTargets = append(analysis.AnalysisTargets, ocsfAnalysisTarget{Name: an.ServerID, Type: "MCP Server"})
	}

	return ocsfFinding{
		ActivityID:      activity,
		ActivityName:    activityName,
		AnomalyAnalyses: []ocsfAnomalyAnalysis{analysis},
		CategoryName:    "Findings",
		CategoryUID:     ocsfCategoryUID,
		ClassName:       "Detection Finding",
		ClassUID:        ocsfClassUID,
		Count:           an.Count,
		EndTime:         ms(an.LastSeen),
		Evidences:       []ocsfEvidence{ev},
		FindingInfo: ocsfFindingInfo{
			Analytic:           ocsfAnalytic{Name: an.Explanation.Model, Type: "Behavioral", TypeID: ocsfAnalyticBehavior},
			CreatedTime:        ms(an.FirstSeen),
			Desc:               an.Explanation.Summary,
			FirstSeenTime:      ms(an.FirstSeen),
			LastSeenTime:       ms(an.LastSeen),
			ModifiedTime:       ms(an.Time),
			RelatedEvents:      related,
			RelatedEventsCount: len(an.EvidenceEventIDs),
			Title:              an.Title,
			Types:              []string{an.Kind},
			UID:                an.ID,
		},
		IsAlert: true,
		Message: an.Title,
		Metadata: ocsfMetadata{
			CorrelationUID: an.ID,
			LogName:        "mcp.anomalies",
			Product:        ocsfProduct{Name: "mcpwatch", VendorName: "mcpwatch", Version: productVersion},
			UID:            a.DeliveryID,
			Version:        OCSFVersion,
		},
		Observables: observables,
		RiskScore:   int(math.Round(an.Score)),
		Severity:    sev.caption,
		SeverityID:  sev.id,
		StartTime:   ms(an.FirstSeen),
		Status:      "New",
		StatusID:    ocsfStatusNew,
		Time:        ms(an.Time),
		TypeName:    "Detection Finding: " + activityName,
		TypeUID:     ocsfClassUID*100 + activity,
		Unmapped: ocsfUnmapped{
			Kind: an.Kind, Subject: an.Subject, Score: an.Score,
			Observed: an.Explanation.Observed, Typical: an.Explanation.Typical, Probability: an.Explanation.Probability,
			Tags: an.Tags, DeliveryID: a.DeliveryID, Digest: a.Digest,
		},
	}
}

// productVersion is mcpwatch's module version, as in CEF and LEEF headers.
var productVersion = buildVersion()
