package media_test

import (
	"fmt"

	"github.com/tollguard/tollguard/internal/callpolicy/media"
)

func ExamplePolicy_Check() {
	offer := "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n" +
		"m=audio 4000 RTP/SAVP 0\r\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0e\r\n" +
		"m=video 4002 RTP/AVP 96\r\n"
	err := media.Policy{}.Check([]byte(offer))
	fmt.Println(media.Code, err)
	// Output:
	// 488 m-line 2: video: RTP/AVP is plain RTP; SRTP is required (RTP/SAVP with a=crypto, or DTLS-SRTP)
}
