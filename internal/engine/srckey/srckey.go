// Package srckey hashes a source address into the key of the engine's
// fixed-size source tables (flood, greylist): IPv4 by address, IPv6 by
// its first v6bits bits, mixed with a table's random seed so an attacker
// cannot aim addresses at one shard or one probe sequence.
package srckey

import (
	"math/bits"
	"net/netip"
)

// Hash returns the key of a (IPv4-mapped IPv6 counts as IPv4) under seed;
// IPv6 addresses that share their first v6bits bits hash alike. IPv4 and
// IPv6 keys never collide by construction, only by chance.
func Hash(a netip.Addr, v6bits int, seed uint64) uint64 {
	a = a.Unmap()
	var hi, lo uint64
	if a.Is4() {
		b := a.As4()
		lo = 0xffff<<32 | uint64(b[0])<<24 | uint64(b[1])<<16 | uint64(b[2])<<8 | uint64(b[3])
	} else {
		b := a.As16()
		for i := 0; i < 8; i++ {
			hi = hi<<8 | uint64(b[i])
			lo = lo<<8 | uint64(b[8+i])
		}
		switch {
		case v6bits <= 64:
			hi &= ^uint64(0) << (64 - v6bits)
			lo = 0
		case v6bits < 128:
			lo &= ^uint64(0) << (128 - v6bits)
		}
		hi ^= 0x9e3779b97f4a7c15 // keep IPv6 keys apart from IPv4 ones
	}
	x := hi ^ seed
	x = (x ^ x>>33) * 0xff51afd7ed558ccd
	x ^= lo
	x = (x ^ x>>33) * 0xc4ceb9fe1a85ec53
	x = (x ^ x>>33) * 0xff51afd7ed558ccd
	return x ^ x>>33
}

// Layout sizes a source table for maxSources: up to 256 shards of at
// least 64 slots each (fewer shards for a small table), perShard a power
// of two, and shift the right shift that takes a Hash to its shard.
func Layout(maxSources int) (shards, perShard int, shift uint) {
	shards = 256
	for shards > 1 && maxSources/shards < 64 {
		shards /= 2
	}
	perShard = 1 << bits.Len(uint(max(maxSources/shards, 1)-1))
	return shards, perShard, uint(64 - bits.TrailingZeros(uint(shards)))
}
