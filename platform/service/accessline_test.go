package service

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"math"
	"testing"
	"time"
)

// TestAccessLinesAreWhatSlogWrites: every line accessLines writes is byte for byte what
// slog's JSONHandler writes for the same record, whether written here or left to slog
// (values JSON escapes, odd floats, groups, other levels).
func TestAccessLinesAreWhatSlogWrites(t *testing.T) {
	at := time.Date(2026, 11, 23, 18, 14, 3, 123456789, time.UTC)
	records := map[string][]slog.Attr{
		"usual": {slog.String("method", "GET"), slog.String("path", "/tasks"), slog.Int("status", 200),
			slog.Int("bytes", 6718), slog.Float64("ms", 0.123), slog.String("requestId", "ZFKLSQXP3J6QCZ6L3JAXNAM2G6")},
		"no attributes":   nil,
		"zero and big":    {slog.Float64("ms", 0), slog.Float64("big", 12345678.5), slog.Int64("neg", -7), slog.Uint64("u", math.MaxUint64)},
		"negative zero":   {slog.Float64("ms", math.Copysign(0, -1))},
		"tiny float":      {slog.Float64("ms", 1e-9)},
		"huge float":      {slog.Float64("ms", 1e22)},
		"NaN":             {slog.Float64("ms", math.NaN())},
		"quote in path":   {slog.String("path", `/a"b`)},
		"backslash":       {slog.String("path", `/a\b`)},
		"control":         {slog.String("path", "/a\nb")},
		"HTML characters": {slog.String("path", "/<script>&</script>")},
		"not ASCII":       {slog.String("path", "/café")},
		"invalid UTF-8":   {slog.String("path", "/\xff")},
		"odd key":         {slog.String("a\"b", "x")},
		"empty key":       {slog.String("", "x")},
		"bool":            {slog.Bool("ok", true)},
		"duration":        {slog.Duration("took", time.Second)},
		"group":           {slog.Group("g", slog.String("a", "b"))},
		"any":             {slog.Any("list", []int{1, 2})},
	}
	for name, attrs := range records {
		for _, level := range []slog.Level{slog.LevelInfo, slog.LevelDebug, slog.LevelWarn + 1} {
			for _, msg := range []string{"request", "odd \"message\""} {
				var want, got bytes.Buffer
				opts := &slog.HandlerOptions{Level: slog.LevelDebug}
				var ref slog.Handler = slog.NewJSONHandler(&want, opts)
				var ours slog.Handler = newAccessLines(&got, opts)
				ref = ref.WithAttrs([]slog.Attr{slog.String("service", "tasks")})
				ours = ours.WithAttrs([]slog.Attr{slog.String("service", "tasks")})
				r := slog.NewRecord(at, level, msg, 0)
				r.AddAttrs(attrs...)
				if err := ref.Handle(context.Background(), r); err != nil {
					t.Fatal(err)
				}
				if err := ours.Handle(context.Background(), r); err != nil {
					t.Fatal(err)
				}
				if got.String() != want.String() {
					t.Errorf("%s, %s, %q:\n got %s\nwant %s", name, level, msg, got.String(), want.String())
				}
			}
		}
	}
}

// TestAccessLinesWithGroupsAndOddAttrs: handlers made with a group, or with attributes that
// need escaping, still write what slog writes.
func TestAccessLinesWithGroupsAndOddAttrs(t *testing.T) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.FixedZone("X", 3600))
	for name, derive := range map[string]func(slog.Handler) slog.Handler{
		"group":    func(h slog.Handler) slog.Handler { return h.WithGroup("req").WithAttrs([]slog.Attr{slog.Int("n", 1)}) },
		"odd attr": func(h slog.Handler) slog.Handler { return h.WithAttrs([]slog.Attr{slog.String("service", "t\"s")}) },
		"two withs": func(h slog.Handler) slog.Handler {
			return h.WithAttrs([]slog.Attr{slog.String("a", "1")}).WithAttrs([]slog.Attr{slog.Int("b", 2)})
		},
		"none at all": func(h slog.Handler) slog.Handler { return h },
	} {
		var want, got bytes.Buffer
		opts := &slog.HandlerOptions{}
		ref, ours := derive(slog.NewJSONHandler(&want, opts)), derive(newAccessLines(&got, opts))
		r := slog.NewRecord(at, slog.LevelInfo, "request", 0)
		r.AddAttrs(slog.String("path", "/tasks"), slog.Float64("ms", 1.5))
		ref.Handle(context.Background(), r)
		ours.Handle(context.Background(), r)
		if got.String() != want.String() {
			t.Errorf("%s:\n got %s\nwant %s", name, got.String(), want.String())
		}
	}
}

// BenchmarkAccessLine: one access line as GET /tasks logs it, by slog's JSONHandler and by
// accessLines (go test -bench AccessLine ./service).
func BenchmarkAccessLine(b *testing.B) {
	for name, handler := range map[string]func(*slog.HandlerOptions) slog.Handler{
		"slog": func(o *slog.HandlerOptions) slog.Handler { return slog.NewJSONHandler(io.Discard, o) },
		"ours": func(o *slog.HandlerOptions) slog.Handler { return newAccessLines(io.Discard, o) },
	} {
		b.Run(name, func(b *testing.B) {
			h := handler(&slog.HandlerOptions{}).WithAttrs([]slog.Attr{slog.String("service", "tasks")})
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				r := slog.NewRecord(time.Now(), slog.LevelInfo, "request", 0)
				r.AddAttrs(slog.String("method", "GET"), slog.String("path", "/tasks"), slog.Int("status", 200),
					slog.Int("bytes", 6718), slog.Float64("ms", 0.123), slog.String("requestId", "ZFKLSQXP3J6QCZ6L3JAXNAM2G6"))
				h.Handle(ctx, r)
			}
		})
	}
}

// TestUsualAccessLineIsWrittenHere: the access line of a usual request is written by
// accessLines itself, never handed to slog (which would still write the same bytes, only
// at twice the cost).
func TestUsualAccessLineIsWrittenHere(t *testing.T) {
	var got bytes.Buffer
	h := newAccessLines(&got, &slog.HandlerOptions{})
	h.json = handedToSlog{Handler: h.json, t: t}
	ours := h.WithAttrs([]slog.Attr{slog.String("service", "tasks")})
	r := slog.NewRecord(time.Now(), slog.LevelInfo, "request", 0)
	r.AddAttrs(slog.String("method", "GET"), slog.String("path", "/tasks"), slog.Int("status", 200),
		slog.Int("bytes", 6718), slog.Float64("ms", 0.123), slog.String("requestId", "ZFKLSQXP3J6QCZ6L3JAXNAM2G6"))
	if err := ours.Handle(context.Background(), r); err != nil || got.Len() == 0 {
		t.Fatalf("nothing written (%v)", err)
	}
}

// handedToSlog fails the test for any record it is handed.
type handedToSlog struct {
	slog.Handler
	t *testing.T
}

func (h handedToSlog) Handle(context.Context, slog.Record) error {
	h.t.Error("a usual access line was handed to slog")
	return nil
}

func (h handedToSlog) WithAttrs([]slog.Attr) slog.Handler { return h }
