package bridge

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/gopcua/opcua/ua"

	"github.com/rcbridge/rcbridge/mapping"
)

// Commands: the CommandSource's handler (handle) looks the route up in
// the mapping table (the allow-list), checks the server's state, rate
// limit and queue without blocking, and queues the command for the
// server's worker, which decodes and coerces it against the node's type
// as read in the current session, writes or calls, and replies. Refusals
// decided in the handler are answered by the bridge's reply goroutine, so
// the handler never blocks.

// command is a command queued for a server's worker.
type command struct {
	cmd  Command
	item *mapping.Item
	seen *dedupEntry // where the reply is remembered; nil for none
}

// refusal is a command refused before it reached a server, or (raw set)
// the copy of a command answered before, to be answered the same again.
type refusal struct {
	cmd    Command
	seen   *dedupEntry
	status ua.StatusCode
	err    error
	raw    []byte
}

// handle is the CommandHandler: it runs on the bus adapter's goroutine
// and must not block.
func (b *Bridge) handle(cmd Command) {
	item, ok := b.cfg.Table.Route(cmd.Route)
	if !ok {
		b.cfg.Metrics.CommandsUnrouted.Add(1)
		if it, ro := b.readOnly[cmd.Route]; ro {
			b.refuse(cmd, ua.StatusBadNotWritable, fmt.Errorf("%w: row %q of server %q is not writable in the mapping", ErrNotWritable, it.Name, it.ServerURI))
			return
		}
		b.refuse(cmd, ua.StatusBadNodeIDUnknown, fmt.Errorf("%w: %q", ErrUnknownRoute, cmd.Route))
		return
	}
	now := time.Now()
	seen, dup, answer := b.dedup.begin(cmd.Route, commandID(cmd.Payload), cmd.Payload, now)
	if dup {
		b.cfg.Metrics.CommandsDuplicate.Add(1)
		b.log.Debug("command received again: not carried out", "route", cmd.Route, "answered", answer != nil)
		if answer != nil {
			b.queueRefusal(refusal{cmd: cmd, raw: answer})
		}
		return
	}
	s := b.byURI[item.ServerURI]
	if _, st := s.current(); st != Online {
		s.m.CommandsRefused.Add(1)
		b.refuseSeen(cmd, seen, ua.StatusBadServerNotConnected, fmt.Errorf("%w: server %q is %s", ErrOffline, s.uri, st))
		return
	}
	if !s.limiter.allow(now) {
		s.m.CommandsLimited.Add(1)
		b.refuseSeen(cmd, seen, ua.StatusBadTooManyOperations, fmt.Errorf("%w: server %q takes %s commands per second (burst %d)",
			ErrRateLimited, s.uri, strconv.FormatFloat(s.cfg.CommandRate, 'g', -1, 64), s.cfg.CommandBurst))
		return
	}
	select {
	case s.cmds <- command{cmd: cmd, item: item, seen: seen}:
	default:
		s.m.CommandsBusy.Add(1)
		b.refuseSeen(cmd, seen, ua.StatusBadTooManyOperations, fmt.Errorf("%w: %d commands already wait for server %q", ErrBusy, cap(s.cmds), s.uri))
	}
}

// refuse queues the answer to a refused command for the reply goroutine;
// when that queue is full the command is dropped unanswered.
func (b *Bridge) refuse(cmd Command, status ua.StatusCode, err error) {
	b.refuseSeen(cmd, nil, status, err)
}

// refuseSeen is refuse for a command whose answer is remembered in seen.
func (b *Bridge) refuseSeen(cmd Command, seen *dedupEntry, status ua.StatusCode, err error) {
	b.queueRefusal(refusal{cmd: cmd, seen: seen, status: status, err: err})
}

// queueRefusal hands r to the reply goroutine without blocking.
func (b *Bridge) queueRefusal(r refusal) {
	select {
	case b.refusals <- r:
	default:
		b.dedup.forget(r.seen)
		b.cfg.Metrics.RejectsDropped.Add(1)
		b.log.Debug("refused command dropped without reply: reply queue full", "route", r.cmd.Route)
	}
}

// replyLoop answers refused commands until stop is closed, then answers
// those still queued.
func (b *Bridge) replyLoop(ctx context.Context, stop <-chan struct{}) {
	base := context.WithoutCancel(ctx)
	send := func(r refusal) { b.sendRefusal(base, r) }
	serveQueue(b.refusals, stop, send, send)
}

// serveQueue calls handle for each element of q until stop is closed, then
// drain for each element still queued.
func serveQueue[T any](q <-chan T, stop <-chan struct{}, handle, drain func(T)) {
	for {
		select {
		case x := <-q:
			handle(x)
		case <-stop:
			for {
				select {
				case x := <-q:
					drain(x)
				default:
					return
				}
			}
		}
	}
}

func (b *Bridge) sendRefusal(base context.Context, r refusal) {
	if r.raw != nil {
		b.send(base, r.cmd, r.raw)
		return
	}
	b.log.Debug("command refused", "route", r.cmd.Route, "status", r.status, "err", r.err)
	b.reply(base, r.cmd, r.seen, false, mapping.Reply{ID: commandID(r.cmd.Payload), Status: r.status, Err: r.err})
}

// reply sends the reply to cmd within CommandTimeout. When the command
// reached the server (sent) the reply is remembered in seen for copies of
// the command; otherwise the command is forgotten, so that a retry is
// carried out.
func (b *Bridge) reply(base context.Context, cmd Command, seen *dedupEntry, sent bool, r mapping.Reply) {
	payload := mapping.AppendReply(nil, r)
	if sent {
		b.dedup.finish(seen, payload)
	} else {
		b.dedup.forget(seen)
	}
	b.send(base, cmd, payload)
}

// send sends payload as the reply to cmd within CommandTimeout.
func (b *Bridge) send(base context.Context, cmd Command, payload []byte) {
	ctx, cancel := context.WithTimeout(base, b.cfg.CommandTimeout)
	defer cancel()
	if err := cmd.Reply(ctx, payload); err != nil {
		b.log.Debug("command reply not sent", "route", cmd.Route, "err", err)
	}
}

// commandID returns the correlation id of a command payload, or "" when
// the payload has none or is not a JSON object with a string id.
func commandID(payload []byte) string {
	var env struct {
		ID json.RawMessage `json:"id"`
	}
	if json.Unmarshal(payload, &env) != nil || len(env.ID) == 0 {
		return ""
	}
	var id string
	if json.Unmarshal(env.ID, &id) != nil || len(id) > mapping.MaxCommandIDLen {
		return ""
	}
	return id
}

// commandLoop carries out the server's commands one at a time until stop is
// closed; commands still queued then are answered as refused.
func (s *supervisor) commandLoop(ctx context.Context, stop <-chan struct{}) {
	base := context.WithoutCancel(ctx)
	serveQueue(s.cmds, stop, func(c command) { s.execute(base, c) }, func(c command) {
		s.m.CommandsRefused.Add(1)
		s.b.reply(base, c.cmd, c.seen, false, mapping.Reply{ID: commandID(c.cmd.Payload), Status: ua.StatusBadShutdown,
			Err: fmt.Errorf("%w: the bridge is shutting down", ErrOffline)})
	})
}

// execute carries out one command and replies.
func (s *supervisor) execute(base context.Context, c command) {
	ctx, cancel := context.WithTimeout(base, s.b.cfg.CommandTimeout)
	defer cancel()
	r, sent := s.carryOut(ctx, c)
	switch {
	case r.OK():
		s.m.Commands.Add(1)
	case !sent:
		s.m.CommandsRefused.Add(1)
	default:
		s.m.CommandsBad.Add(1)
	}
	s.log.Info("command", "kind", c.item.Kind, "name", c.item.Name, "id", r.ID, "status", mapping.StatusName(r.Status), "err", r.Err)
	s.b.reply(base, c.cmd, c.seen, sent, r)
}

// carryOut decodes, checks and carries out one command. It reports
// whether the write or call was sent to the server.
func (s *supervisor) carryOut(ctx context.Context, c command) (mapping.Reply, bool) {
	sess, st := s.current()
	if sess == nil || st != Online {
		return mapping.Reply{ID: commandID(c.cmd.Payload), Status: ua.StatusBadServerNotConnected,
			Err: fmt.Errorf("%w: server %q is %s", ErrOffline, s.uri, st)}, false
	}
	s.mu.Lock()
	t := sess.targets[c.item]
	s.mu.Unlock()
	if t == nil || t.err != nil {
		err := fmt.Errorf("%w: row %q", ErrUnavailable, c.item.Name)
		if t != nil {
			err = t.err
		}
		return mapping.Reply{ID: commandID(c.cmd.Payload), Status: statusOf(err, ua.StatusBadNodeIDUnknown), Err: err}, false
	}
	if c.item.Kind == mapping.Method {
		return s.call(ctx, sess, t, c)
	}
	id, v, err := mapping.DecodeWrite(c.cmd.Payload, t.vt)
	if err != nil {
		return mapping.Reply{ID: id, Status: mapping.CommandStatus(err), Err: err}, false
	}
	status, err := sess.client.Write(ctx, t.node, v)
	if err != nil {
		return mapping.Reply{ID: id, Status: statusOf(err, ua.StatusBadCommunicationError), Err: fmt.Errorf("write: %w", err)}, true
	}
	return mapping.Reply{ID: id, Status: status}, true
}

// call carries out a method call.
func (s *supervisor) call(ctx context.Context, sess *session, t *target, c command) (mapping.Reply, bool) {
	id, args, err := mapping.DecodeCall(c.cmd.Payload, c.item.Arguments)
	if err != nil {
		return mapping.Reply{ID: id, Status: mapping.CommandStatus(err), Err: err}, false
	}
	res, err := sess.client.Call(ctx, t.object, t.method, args)
	if err != nil {
		return mapping.Reply{ID: id, Status: statusOf(err, ua.StatusBadCommunicationError), Err: fmt.Errorf("call: %w", err)}, true
	}
	r := mapping.Reply{ID: id, Status: res.StatusCode}
	if !isBad(res.StatusCode) {
		r.Outputs = res.OutputArguments
		if r.Outputs == nil {
			r.Outputs = []*ua.Variant{}
		}
	}
	for i, st := range res.InputArgumentResults {
		if isBad(st) {
			r.Err = fmt.Errorf("args[%d]: %s", i, mapping.StatusName(st))
			break
		}
	}
	return r, true
}

// statusOf returns the status code inside err: a ua.StatusCode it wraps,
// BadTimeout for a deadline, or def.
func statusOf(err error, def ua.StatusCode) ua.StatusCode {
	var sc ua.StatusCode
	switch {
	case errors.As(err, &sc):
		return sc
	case errors.Is(err, context.DeadlineExceeded):
		return ua.StatusBadTimeout
	}
	return def
}
