package vercelfake

import (
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sandkit/sandkit-mcp/sandbox"
)

// Session states (reference §4.1, §10.1).
const (
	statusPending      = "pending"
	statusRunning      = "running"
	statusStopping     = "stopping"
	statusSnapshotting = "snapshotting"
	statusStopped      = "stopped"
	statusFailed       = "failed"
)

// Snapshot states (reference §4.5).
const (
	snapCreated = "created"
	snapDeleted = "deleted"
)

// HomeDir is the home directory of the VM's user, vercel-sandbox, the user Vercel's runtimes run
// commands as. The fake maps it onto the backend's home (see the package doc).
const HomeDir = "/home/vercel-sandbox"

// Defaults of the service (reference §12).
const (
	defaultTimeoutMs    = 300_000
	defaultVCPUs        = 2
	maxVCPUs            = 32
	memoryPerVCPU       = 2048
	defaultRegion       = "iad1"
	sessionCwd          = "/vercel/sandbox"
	maxPorts            = 15
	maxTags             = 5
	day                 = 24 * time.Hour
	defaultSnapshotTTL  = 30 * day // v1/v2 snapshot and create endpoints
	defaultSnapshotTTL3 = 7 * day  // POST /v3/sandboxes/sessions/{id}/snapshot
	minSnapshotTTL      = day
)

// regions the API accepts (SDK 3.5 constants).
var regions = map[string]bool{
	"iad1": true, "sfo1": true, "cle1": true, "cdg1": true, "fra1": true, "arn1": true, "sin1": true,
	"pdx1": true, "lhr1": true, "icn1": true, "bom1": true, "cpt1": true, "dub1": true, "gru1": true,
	"hkg1": true, "syd1": true, "yul1": true, "hnd1": true, "kix1": true,
}

// keepLast is a sandbox's snapshot retention (keepLastSnapshots).
type keepLast struct {
	Count         int    `json:"count"`
	Expiration    *int64 `json:"expiration,omitempty"`
	DeleteEvicted *bool  `json:"deleteEvicted,omitempty"`
}

// namedSandbox is the durable v2 "sandbox" object (§4.2). Guarded by sandboxState.mu; its name
// is fixed once it is registered.
type namedSandbox struct {
	name       string
	projectID  string
	persistent bool
	region     string
	failover   []string
	vcpus      int
	runtime    string
	image      string
	timeout    int64
	policy     *netPolicy
	networkID  string
	env        map[string]string
	tags       map[string]string
	ports      []int
	subdomains map[int]string // stable per (sandbox, port)
	snapExp    *int64         // snapshotExpiration
	keepLast   *keepLast

	createdAt, updatedAt, statusUpdatedAt int64

	current           *session
	currentSnapshotID string

	totalEgress, totalIngress, totalCPU, totalDuration int64

	// resumeMu makes concurrent resumes of this sandbox one. It is taken before any state
	// lock (state.go), never under one.
	resumeMu sync.Mutex
}

// session is one VM run of a named sandbox (§4.1). Fields are guarded by sessionState.mu unless
// noted; id and sb are fixed.
type session struct {
	id        string
	sb        *namedSandbox // only its name may be read under sessionState.mu alone
	projectID string
	status    string
	region    string
	vcpus     int
	runtime   string
	timeout   int64
	policy    *netPolicy

	requestedAt, createdAt, startedAt, updatedAt int64
	requestedStopAt, stoppedAt, snapshottedAt    int64
	duration, cpuMs                              int64
	stopped                                      bool // metrics are final
	sourceSnapshotID                             string
	// sourceRef is the backend snapshot the session started from ("" for an empty start): the
	// state of a snapshot of a session that changed nothing (the backend makes none then).
	sourceRef sandbox.SnapshotRef

	backend sandbox.Sandbox
	ports   []int
	// subdomains are the sandbox's route subdomains of ports (stable per sandbox and port),
	// copied so that routes need only the session's lock.
	subdomains map[int]string
	listeners  map[int]*routeListener
	commands   map[string]*command
	order      []*command
	timer      *time.Timer
	// done is closed once the session has stopped (or failed).
	done chan struct{}

	// Bytes through the session's routes (atomic: updated by the proxies).
	ingress, egress atomic.Int64
}

// snapshot is a snapshot object (§4.5). Guarded by snapshotState.mu; id and ref are fixed.
type snapshot struct {
	id              string
	sourceSessionID string
	sandboxName     string
	projectID       string
	region          string
	ref             sandbox.SnapshotRef
	status          string
	sizeBytes       int64
	createdAt       int64
	updatedAt       int64
	lastUsedAt      int64
	expiration      int64 // ms from the last use; 0 = never expires
	creationMethod  string
	parentID        string
}

func (sn *snapshot) expiresAt() int64 {
	if sn.expiration <= 0 {
		return 0
	}
	return max(sn.lastUsedAt, sn.createdAt) + sn.expiration
}

func ms(t time.Time) int64 { return t.UnixMilli() }

// --- wire shapes -------------------------------------------------------------------------------

type wireTransfer struct {
	Ingress int64 `json:"ingress"`
	Egress  int64 `json:"egress"`
}

type wireSession struct {
	ID                  string        `json:"id"`
	Memory              int           `json:"memory"`
	VCPUs               int           `json:"vcpus"`
	Region              string        `json:"region"`
	Runtime             string        `json:"runtime,omitempty"`
	Timeout             int64         `json:"timeout"`
	Status              string        `json:"status"`
	RequestedAt         int64         `json:"requestedAt"`
	StartedAt           int64         `json:"startedAt,omitempty"`
	RequestedStopAt     int64         `json:"requestedStopAt,omitempty"`
	StoppedAt           int64         `json:"stoppedAt,omitempty"`
	Duration            *int64        `json:"duration,omitempty"`
	SourceSnapshotID    string        `json:"sourceSnapshotId,omitempty"`
	SnapshottedAt       int64         `json:"snapshottedAt,omitempty"`
	CreatedAt           int64         `json:"createdAt"`
	Cwd                 string        `json:"cwd"`
	UpdatedAt           int64         `json:"updatedAt"`
	NetworkPolicy       any           `json:"networkPolicy,omitempty"`
	ActiveCPUDurationMs *int64        `json:"activeCpuDurationMs,omitempty"`
	NetworkTransfer     *wireTransfer `json:"networkTransfer,omitempty"`
	SourceSandboxName   string        `json:"sourceSandboxName"`
	ProjectID           string        `json:"projectId"`
}

type wireSandbox struct {
	Name                     string            `json:"name"`
	ProjectID                string            `json:"projectId"`
	Persistent               bool              `json:"persistent"`
	Region                   string            `json:"region"`
	FailoverRegions          []string          `json:"failoverRegions"`
	NetworkID                string            `json:"networkId,omitempty"`
	VCPUs                    int               `json:"vcpus"`
	Memory                   int               `json:"memory"`
	Runtime                  string            `json:"runtime,omitempty"`
	Image                    string            `json:"image,omitempty"`
	Timeout                  int64             `json:"timeout"`
	NetworkPolicy            any               `json:"networkPolicy,omitempty"`
	TotalEgressBytes         int64             `json:"totalEgressBytes"`
	TotalIngressBytes        int64             `json:"totalIngressBytes"`
	TotalActiveCPUDurationMs int64             `json:"totalActiveCpuDurationMs"`
	TotalDurationMs          int64             `json:"totalDurationMs"`
	CreatedAt                int64             `json:"createdAt"`
	UpdatedAt                int64             `json:"updatedAt"`
	ExpiresAt                int64             `json:"expiresAt,omitempty"`
	CurrentSessionID         string            `json:"currentSessionId"`
	CurrentSnapshotID        string            `json:"currentSnapshotId,omitempty"`
	Status                   string            `json:"status"`
	StatusUpdatedAt          int64             `json:"statusUpdatedAt,omitempty"`
	Cwd                      string            `json:"cwd"`
	Tags                     map[string]string `json:"tags,omitempty"`
	SnapshotExpiration       *int64            `json:"snapshotExpiration,omitempty"`
	KeepLastSnapshots        *keepLast         `json:"keepLastSnapshots,omitempty"`
}

type wireRoute struct {
	URL       string `json:"url"`
	Subdomain string `json:"subdomain"`
	Port      int    `json:"port"`
}

type wireSnapshot struct {
	ID              string   `json:"id"`
	SourceSessionID string   `json:"sourceSessionId"`
	SandboxName     string   `json:"sourceSandboxName,omitempty"`
	Region          string   `json:"region"`
	Regions         []string `json:"regions"`
	Status          string   `json:"status"`
	SizeBytes       int64    `json:"sizeBytes"`
	ExpiresAt       int64    `json:"expiresAt,omitempty"`
	CreatedAt       int64    `json:"createdAt"`
	UpdatedAt       int64    `json:"updatedAt"`
	LastUsedAt      int64    `json:"lastUsedAt,omitempty"`
	CreationMethod  string   `json:"creationMethod,omitempty"`
	ParentID        string   `json:"parentId,omitempty"`
}

type wireCommand struct {
	ID         string   `json:"id"`
	Name       string   `json:"name"`
	Args       []string `json:"args"`
	Cwd        string   `json:"cwd"`
	SessionID  string   `json:"sessionId"`
	ExitCode   *int     `json:"exitCode"`
	DurationMs *int64   `json:"durationMs,omitempty"`
	StartedAt  int64    `json:"startedAt"`
}

type wirePagination struct {
	Count int     `json:"count"`
	Next  *string `json:"next"`
}

// --- views -------------------------------------------------------------------------------------
//
// Called with the locks of what they show held: a session's and a command's with
// sessionState.mu; a sandbox's with sandboxState.mu and sessionState.mu (it shows its current
// session); a snapshot's with snapshotState.mu.

func (ss *session) view() wireSession {
	w := wireSession{
		ID:                ss.id,
		Memory:            ss.vcpus * memoryPerVCPU,
		VCPUs:             ss.vcpus,
		Region:            ss.region,
		Runtime:           ss.runtime,
		Timeout:           ss.timeout,
		Status:            ss.status,
		RequestedAt:       ss.requestedAt,
		StartedAt:         ss.startedAt,
		RequestedStopAt:   ss.requestedStopAt,
		StoppedAt:         ss.stoppedAt,
		SourceSnapshotID:  ss.sourceSnapshotID,
		SnapshottedAt:     ss.snapshottedAt,
		CreatedAt:         ss.createdAt,
		Cwd:               sessionCwd,
		UpdatedAt:         ss.updatedAt,
		NetworkPolicy:     ss.policy.response(),
		SourceSandboxName: ss.sb.name,
		ProjectID:         ss.projectID,
	}
	if ss.stopped {
		d, cpu := ss.duration, ss.cpuMs
		w.Duration = &d
		w.ActiveCPUDurationMs = &cpu
		w.NetworkTransfer = &wireTransfer{Ingress: ss.ingress.Load(), Egress: ss.egress.Load()}
	}
	return w
}

// routes lists the session's routes, ordered by port.
func (ss *session) routes() []wireRoute {
	out := []wireRoute{}
	for _, p := range ss.ports {
		r := wireRoute{Subdomain: ss.subdomains[p], Port: p}
		if l := ss.listeners[p]; l != nil {
			r.URL = l.url
		} else {
			// The session has stopped and its listener is gone: the public address, which
			// serves nothing here.
			r.URL = "https://" + r.Subdomain + ".vercel.run"
		}
		out = append(out, r)
	}
	return out
}

// deadline is when a running session times out: (startedAt ?? createdAt) + timeout.
func (ss *session) deadline() int64 {
	base := ss.startedAt
	if base == 0 {
		base = ss.createdAt
	}
	return base + ss.timeout
}

func (sb *namedSandbox) view() wireSandbox {
	w := wireSandbox{
		Name:                     sb.name,
		ProjectID:                sb.projectID,
		Persistent:               sb.persistent,
		Region:                   sb.region,
		FailoverRegions:          append([]string{}, sb.failover...),
		NetworkID:                sb.networkID,
		VCPUs:                    sb.vcpus,
		Memory:                   sb.vcpus * memoryPerVCPU,
		Runtime:                  sb.runtime,
		Image:                    sb.image,
		Timeout:                  sb.timeout,
		NetworkPolicy:            sb.policy.response(),
		TotalEgressBytes:         sb.totalEgress,
		TotalIngressBytes:        sb.totalIngress,
		TotalActiveCPUDurationMs: sb.totalCPU,
		TotalDurationMs:          sb.totalDuration,
		CreatedAt:                sb.createdAt,
		UpdatedAt:                sb.updatedAt,
		CurrentSnapshotID:        sb.currentSnapshotID,
		StatusUpdatedAt:          sb.statusUpdatedAt,
		Cwd:                      sessionCwd,
		Tags:                     sb.tags,
		SnapshotExpiration:       sb.snapExp,
		KeepLastSnapshots:        sb.keepLast,
		Status:                   statusStopped,
	}
	if ss := sb.current; ss != nil {
		w.CurrentSessionID = ss.id
		w.Status = ss.status
		if ss.status == statusRunning {
			w.ExpiresAt = ss.deadline()
		}
		if !ss.stopped {
			// Running totals include the current session's route traffic so far.
			w.TotalEgressBytes += ss.egress.Load()
			w.TotalIngressBytes += ss.ingress.Load()
		}
	}
	return w
}

func (sn *snapshot) view() wireSnapshot {
	return wireSnapshot{
		ID:              sn.id,
		SourceSessionID: sn.sourceSessionID,
		SandboxName:     sn.sandboxName,
		Region:          sn.region,
		Regions:         []string{sn.region},
		Status:          sn.status,
		SizeBytes:       sn.sizeBytes,
		ExpiresAt:       sn.expiresAt(),
		CreatedAt:       sn.createdAt,
		UpdatedAt:       sn.updatedAt,
		LastUsedAt:      sn.lastUsedAt,
		CreationMethod:  sn.creationMethod,
		ParentID:        sn.parentID,
	}
}

// sortedPorts returns ports sorted and de-duplicated.
func sortedPorts(ports []int) []int {
	out := append([]int(nil), ports...)
	sort.Ints(out)
	j := 0
	for i, p := range out {
		if i == 0 || p != out[j-1] {
			out[j] = p
			j++
		}
	}
	return out[:j]
}
