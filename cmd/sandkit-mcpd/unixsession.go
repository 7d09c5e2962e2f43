package main

import (
	"sync/atomic"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
)

// connSession is the MCP client session of one Unix-socket connection: its own id (the lease
// holder identity), its notification channel, and what the client said about itself at
// initialize (shown to other agents in lease errors).
type connSession struct {
	id            string
	notifications chan mcp.JSONRPCNotification
	initialized   atomic.Bool
	logLevel      atomic.Value // mcp.LoggingLevel

	// hostRoots are the host roots its door announced (internal/door/hostroots.go); set before the first
	// message is handled, never changed.
	hostRoots []string

	clientInfo atomic.Pointer[mcp.Implementation]
	clientCaps atomic.Pointer[mcp.ClientCapabilities]
}

// HostRoots implements tools.SessionWithHostRoots.
func (s *connSession) HostRoots() []string { return s.hostRoots }

var (
	_ server.ClientSession         = (*connSession)(nil)
	_ server.SessionWithLogging    = (*connSession)(nil)
	_ server.SessionWithClientInfo = (*connSession)(nil)
)

// notificationBuffer matches mcp-go's own sessions: a full channel drops the notification.
const notificationBuffer = 100

func newConnSession(id string) *connSession {
	return &connSession{id: id, notifications: make(chan mcp.JSONRPCNotification, notificationBuffer)}
}

func (s *connSession) SessionID() string { return s.id }

func (s *connSession) NotificationChannel() chan<- mcp.JSONRPCNotification { return s.notifications }

func (s *connSession) Initialize() {
	if s.logLevel.Load() == nil {
		s.logLevel.Store(mcp.LoggingLevelError)
	}
	s.initialized.Store(true)
}

func (s *connSession) Initialized() bool { return s.initialized.Load() }

func (s *connSession) SetLogLevel(level mcp.LoggingLevel) { s.logLevel.Store(level) }

func (s *connSession) GetLogLevel() mcp.LoggingLevel {
	if l, ok := s.logLevel.Load().(mcp.LoggingLevel); ok {
		return l
	}
	return mcp.LoggingLevelError
}

func (s *connSession) GetClientInfo() mcp.Implementation { return loadOrZero(&s.clientInfo) }

func (s *connSession) SetClientInfo(info mcp.Implementation) { s.clientInfo.Store(&info) }

func (s *connSession) GetClientCapabilities() mcp.ClientCapabilities {
	return loadOrZero(&s.clientCaps)
}

func (s *connSession) SetClientCapabilities(caps mcp.ClientCapabilities) { s.clientCaps.Store(&caps) }

// loadOrZero is the value p points to, or T's zero value before anything was stored.
func loadOrZero[T any](p *atomic.Pointer[T]) T {
	if v := p.Load(); v != nil {
		return *v
	}
	var zero T
	return zero
}
