package sipfw

// fifo is a map bounded to max entries that remembers insertion order: when
// full, put evicts the oldest entry. It is not safe for concurrent use.
type fifo[K comparable, V any] struct {
	max        int
	m          map[K]*fifoNode[K, V]
	head, tail *fifoNode[K, V] // head is the oldest
}

type fifoNode[K comparable, V any] struct {
	k          K
	v          V
	prev, next *fifoNode[K, V]
}

func newFIFO[K comparable, V any](max int) *fifo[K, V] {
	return &fifo[K, V]{max: max, m: make(map[K]*fifoNode[K, V])}
}

// put stores v under k as the newest entry, replacing any entry under k. It
// reports whether an older entry was evicted to make room.
func (f *fifo[K, V]) put(k K, v V) (evicted bool) {
	if n, ok := f.m[k]; ok {
		f.unlink(n)
		delete(f.m, k)
	}
	if len(f.m) >= f.max && f.head != nil {
		old := f.head
		f.unlink(old)
		delete(f.m, old.k)
		evicted = true
	}
	n := &fifoNode[K, V]{k: k, v: v, prev: f.tail}
	if f.tail != nil {
		f.tail.next = n
	} else {
		f.head = n
	}
	f.tail = n
	f.m[k] = n
	return evicted
}

// get returns the entry under k.
func (f *fifo[K, V]) get(k K) (V, bool) {
	if n, ok := f.m[k]; ok {
		return n.v, true
	}
	var zero V
	return zero, false
}

// take removes and returns the entry under k.
func (f *fifo[K, V]) take(k K) (V, bool) {
	n, ok := f.m[k]
	if !ok {
		var zero V
		return zero, false
	}
	f.unlink(n)
	delete(f.m, k)
	return n.v, true
}

// oldest returns the oldest entry without removing it.
func (f *fifo[K, V]) oldest() (K, V, bool) {
	if f.head == nil {
		var k K
		var v V
		return k, v, false
	}
	return f.head.k, f.head.v, true
}

func (f *fifo[K, V]) len() int { return len(f.m) }

func (f *fifo[K, V]) unlink(n *fifoNode[K, V]) {
	if n.prev != nil {
		n.prev.next = n.next
	} else {
		f.head = n.next
	}
	if n.next != nil {
		n.next.prev = n.prev
	} else {
		f.tail = n.prev
	}
	n.prev, n.next = nil, nil
}
