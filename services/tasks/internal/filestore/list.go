package filestore

// list holds tasks encoded as the API answers them ({"title":…,"text":…}), in stored order.
// The bytes live in chunks that are only ever appended to within their capacity, so a page
// is a few slices of them, handed to readers with no copy and no encoding per request, and
// the chunks hold no pointers for the garbage collector to scan. Chunks grow from small to
// maxChunk and are never copied to grow, so memory rises smoothly with the tasks (a single
// growing buffer needed three times its size at each doubling).
type list struct {
	chunks [][]byte
	items  []item
	bytes  int64 // encoded bytes of every task
}

// item is one task: its place in the whole store (to merge two lists in stored order) and
// where its bytes are.
type item struct {
	seq      uint32
	chunk    uint32
	from, to uint32
}

const (
	minChunk = 1 << 10
	maxChunk = 1 << 20
)

var comma = []byte{','}

// add appends a task's encoded bytes as the task at seq.
func (l *list) add(seq uint32, encoded []byte) {
	need := len(encoded) + 1
	last := len(l.chunks) - 1
	if last < 0 || cap(l.chunks[last])-len(l.chunks[last]) < need {
		size := minChunk
		if last >= 0 {
			size = min(2*cap(l.chunks[last]), maxChunk)
		}
		l.chunks = append(l.chunks, make([]byte, 0, max(size, need)))
		last++
	}
	chunk := l.chunks[last]
	from := len(chunk)
	// The comma after each task lets a run of tasks in one chunk be answered as one slice.
	l.chunks[last] = append(append(chunk, encoded...), ',')
	l.items = append(l.items, item{seq: seq, chunk: uint32(last), from: uint32(from), to: uint32(from + len(encoded))})
	l.bytes += int64(len(encoded))
}

func (l *list) len() int {
	if l == nil {
		return 0
	}
	return len(l.items)
}

// appendRun appends to parts the tasks items[i:j] of l, which follow one another, as few
// slices as there are chunks under them, separated by commas.
func (l *list) appendRun(parts [][]byte, i, j int) [][]byte {
	for i < j {
		chunk := l.items[i].chunk
		k := i + 1
		for k < j && l.items[k].chunk == chunk {
			k++
		}
		if len(parts) > 0 {
			parts = append(parts, comma)
		}
		from, to := l.items[i].from, l.items[k-1].to
		parts = append(parts, l.chunks[chunk][from:to:to])
		i = k
	}
	return parts
}

// page returns, as slices to write one after another, the elements of a JSON array (no
// brackets) of the tasks offset to offset+limit of the merge of a and b in stored order
// (either may be nil), and how many tasks the two hold.
func page(a, b *list, offset, limit int) (parts [][]byte, total int) {
	total = a.len() + b.len()
	start := min(max(offset, 0), total)
	end := start + min(max(limit, 0), total-start)
	switch {
	case start == end:
		return nil, total
	case b.len() == 0:
		return a.appendRun(nil, start, end), total
	case a.len() == 0:
		return b.appendRun(nil, start, end), total
	}
	i, j := splitMerge(a.items, b.items, start)
	for n := start; n < end; {
		// The longest run from whichever list holds the next task.
		if j >= len(b.items) || (i < len(a.items) && a.items[i].seq < b.items[j].seq) {
			k := i + 1
			for k < len(a.items) && n+(k-i) < end && (j >= len(b.items) || a.items[k].seq < b.items[j].seq) {
				k++
			}
			parts = a.appendRun(parts, i, k)
			n, i = n+(k-i), k
		} else {
			k := j + 1
			for k < len(b.items) && n+(k-j) < end && (i >= len(a.items) || b.items[k].seq < a.items[i].seq) {
				k++
			}
			parts = b.appendRun(parts, j, k)
			n, j = n+(k-j), k
		}
	}
	return parts, total
}

// splitMerge returns i and j, with i+j = k, such that the first k tasks of the merge of a and
// b in stored order are a[:i] and b[:j]: a binary search, so that a page deep in a long list
// costs no more than the first.
func splitMerge(a, b []item, k int) (i, j int) {
	lo, hi := max(0, k-len(b)), min(k, len(a))
	for lo < hi {
		i = (lo + hi) / 2
		j = k - i
		if a[i].seq < b[j-1].seq {
			lo = i + 1 // a[i] comes before the last of b taken: take more of a
		} else {
			hi = i
		}
	}
	return lo, k - lo
}
