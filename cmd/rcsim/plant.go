package main

import (
	"context"
	"math"
	"strconv"
	"sync"
	"time"

	"github.com/gopcua/opcua/ua"
	"github.com/rcbridge/rcbridge/rc/rctest"
)

// The plant model's limits and dynamics.
const (
	setPointMin     = 0.0
	setPointMax     = 100.0
	initialSetPoint = 20.0
	sineAmplitude   = 10.0
	sinePeriod      = 30 * time.Second
	// lag is the fraction of the distance to the set point the temperature
	// covers per tick; settle is how close counts as arrived.
	lag    = 0.2
	settle = 0.005
)

// plant is the simulated machine: counters, a sine, a writable set point, a
// temperature that follows it, and a Reset method. Its state is guarded by
// mu; the OPC UA server reads it through the value functions from its own
// goroutines.
type plant struct {
	start time.Time

	mu          sync.Mutex
	counters    []int32   // guarded by mu
	sine        float64   // guarded by mu
	setPoint    float64   // guarded by mu
	temperature float64   // guarded by mu
	ticked      time.Time // source timestamp of the counters, sine and temperature; guarded by mu
	setAt       time.Time // source timestamp of the set point; guarded by mu

	// node ids, set by install
	counterIDs            []*ua.NodeID
	sineID, temperatureID *ua.NodeID
}

func newPlant(counters int, now time.Time) *plant {
	return &plant{
		start:       now,
		counters:    make([]int32, counters),
		setPoint:    initialSetPoint,
		temperature: initialSetPoint,
		ticked:      now,
		setAt:       now,
	}
}

// install adds the plant's nodes to srv's namespace, under an object named
// Plant: Counter1…CounterN (Int32), Sine and Temperature (Double, read-only),
// SetPoint (Double, writable within [0, 100]) and the method Reset(Int32)
// that sets every counter and returns how many there are (UInt32).
func (p *plant) install(srv *rctest.Server) {
	obj := srv.AddObject(nil, "Plant")
	for i := range p.counters {
		p.counterIDs = append(p.counterIDs, srv.AddDynamicVariable(obj, "Counter"+strconv.Itoa(i+1), func() *ua.DataValue {
			p.mu.Lock()
			defer p.mu.Unlock()
			return value(p.counters[i], p.ticked)
		}, nil))
	}
	p.sineID = srv.AddDynamicVariable(obj, "Sine", p.reader(&p.sine, &p.ticked), nil)
	p.temperatureID = srv.AddDynamicVariable(obj, "Temperature", p.reader(&p.temperature, &p.ticked), nil)
	srv.AddDynamicVariable(obj, "SetPoint", p.reader(&p.setPoint, &p.setAt), p.writeSetPoint)
	srv.AddMethod(obj, "Reset", p.reset)
}

// reader returns a value function for a Double guarded by mu.
func (p *plant) reader(v *float64, at *time.Time) rctest.ReadFunc {
	return func() *ua.DataValue {
		p.mu.Lock()
		defer p.mu.Unlock()
		return value(*v, *at)
	}
}

func value(v any, at time.Time) *ua.DataValue {
	return &ua.DataValue{
		EncodingMask:    ua.DataValueValue | ua.DataValueSourceTimestamp | ua.DataValueServerTimestamp,
		Value:           ua.MustVariant(v),
		SourceTimestamp: at,
		ServerTimestamp: time.Now(),
	}
}

// writeSetPoint accepts a Double within [setPointMin, setPointMax], like a
// PLC that checks its inputs; anything else changes nothing.
func (p *plant) writeSetPoint(v *ua.Variant) ua.StatusCode {
	f, ok := v.Value().(float64)
	switch {
	case !ok:
		return ua.StatusBadTypeMismatch
	case math.IsNaN(f) || f < setPointMin || f > setPointMax:
		return ua.StatusBadOutOfRange
	}
	p.mu.Lock()
	p.setPoint = f
	p.setAt = time.Now()
	p.mu.Unlock()
	return ua.StatusOK
}

// reset implements Plant.Reset(Int32 start) → UInt32 count.
func (p *plant) reset(args []*ua.Variant) ([]*ua.Variant, ua.StatusCode) {
	switch {
	case len(args) < 1:
		return nil, ua.StatusBadArgumentsMissing
	case len(args) > 1:
		return nil, ua.StatusBadTooManyArguments
	}
	start, ok := args[0].Value().(int32)
	if !ok {
		return nil, ua.StatusBadTypeMismatch
	}
	p.mu.Lock()
	for i := range p.counters {
		p.counters[i] = start
	}
	p.ticked = time.Now()
	n := uint32(len(p.counters))
	p.mu.Unlock()
	return []*ua.Variant{ua.MustVariant(n)}, ua.StatusOK
}

// tick advances the model to now and returns the nodes whose value changed:
// counter k grows by k, the sine follows the clock, the temperature moves a
// fraction of the way to the set point until it arrives.
func (p *plant) tick(now time.Time) []*ua.NodeID {
	p.mu.Lock()
	defer p.mu.Unlock()
	changed := make([]*ua.NodeID, 0, len(p.counterIDs)+2)
	for i := range p.counters {
		p.counters[i] += int32(i + 1)
	}
	changed = append(changed, p.counterIDs...)
	phase := 2 * math.Pi * float64(now.Sub(p.start)) / float64(sinePeriod)
	p.sine = math.Round(sineAmplitude*math.Sin(phase)*1000) / 1000
	changed = append(changed, p.sineID)
	if d := p.setPoint - p.temperature; d != 0 {
		if math.Abs(d) < settle {
			p.temperature = p.setPoint
		} else {
			p.temperature += d * lag
		}
		changed = append(changed, p.temperatureID)
	}
	p.ticked = now
	return changed
}

// run ticks every interval until ctx is done and tells srv what changed.
func (p *plant) run(ctx context.Context, srv *rctest.Server, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			for _, n := range p.tick(now) {
				srv.Changed(n)
			}
		}
	}
}
