package dest

import "sync"

// maxCachedKey is the longest input cached; longer inputs are rare and
// would let one caller fill memory with big keys.
const maxCachedKey = 64

// cache is a bounded two-generation map: new results go to cur; when cur
// holds half the capacity it becomes old and the previous old is dropped.
// A hit in old is promoted, so what is dialled often stays. At most size
// entries are held.
type cache struct {
	mu       sync.Mutex
	half     int
	cur, old map[string]Result
}

func newCache(size int) *cache {
	half := max(size/2, 1)
	return &cache{half: half, cur: make(map[string]Result, half)}
}

func (c *cache) get(k string) (Result, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if r, ok := c.cur[k]; ok {
		return r, true
	}
	r, ok := c.old[k]
	if ok {
		c.putLocked(k, r)
	}
	return r, ok
}

func (c *cache) put(k string, r Result) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.putLocked(k, r)
}

func (c *cache) putLocked(k string, r Result) {
	if len(c.cur) >= c.half {
		c.old, c.cur = c.cur, make(map[string]Result, c.half)
	}
	c.cur[k] = r
}

func (c *cache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.cur) + len(c.old)
}
