package users

import (
	"fmt"
	"strings"

	"github.com/boombuler/barcode/qr"
)

// TerminalQR renders text as a QR code for a terminal, two modules per
// character row (upper and lower half blocks), dark modules on a light
// background with the four-module quiet zone scanners need.
func TerminalQR(text string) (string, error) {
	code, err := qr.Encode(text, qr.M, qr.Auto)
	if err != nil {
		return "", fmt.Errorf("encoding QR code: %w", err)
	}
	b := code.Bounds()
	const quiet = 4
	dark := func(x, y int) bool {
		x, y = x-quiet, y-quiet
		if x < 0 || y < 0 || x >= b.Dx() || y >= b.Dy() {
			return false
		}
		r, _, _, _ := code.At(b.Min.X+x, b.Min.Y+y).RGBA()
		return r < 0x8000
	}
	w, h := b.Dx()+2*quiet, b.Dy()+2*quiet
	var sb strings.Builder
	for y := 0; y < h; y += 2 {
		for x := 0; x < w; x++ {
			top, bottom := dark(x, y), y+1 < h && dark(x, y+1)
			switch {
			case top && bottom:
				sb.WriteString(" ")
			case top:
				sb.WriteString("▄")
			case bottom:
				sb.WriteString("▀")
			default:
				sb.WriteString("█")
			}
		}
		sb.WriteString("\n")
	}
	return sb.String(), nil
}
