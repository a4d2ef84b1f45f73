package alert

import (
	"fmt"
	"sort"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/tollguard/tollguard/internal/store"
)

// maxField caps every attacker-influenced string in a message, in runes.
const maxField = 64

// zh reports whether a language is Chinese.
func zh(lang string) bool { return lang == "zh-CN" }

// neutral maps the characters that make markup, links or mentions in
// DingTalk, WeCom and common markdown renderers to full-width look-alikes:
// the text stays readable and cannot format, link or @ anyone.
var neutral = strings.NewReplacer(
	"\\", "＼", "`", "｀", "*", "＊", "_", "＿", "[", "［", "]", "］", "(", "（", ")", "）",
	"<", "＜", ">", "＞", "#", "＃", "@", "＠", "!", "！", "|", "｜", "~", "～", "/", "／",
	"&", "＆", "{", "｛", "}", "｝", "$", "＄", "^", "＾",
)

// neutralOwn is the lighter form for tollguard's own words (rule names,
// the configured upstream): "register_failure[0]" and "udp://…" stay
// readable, and without parentheses, angle brackets or @ they cannot link
// or mention anyone.
var neutralOwn = strings.NewReplacer(
	"\\", "＼", "`", "｀", "*", "＊", "(", "（", ")", "）", "<", "＜", ">", "＞",
	"#", "＃", "@", "＠", "!", "！", "|", "｜", "~", "～", "&", "＆", "$", "＄",
)

// clean makes s safe to put in any message: phone numbers masked, control
// characters and line breaks turned into spaces, markup neutralised, length
// capped.
func clean(s string) string { return neutral.Replace(flat(s)) }

// own is clean for tollguard's own words (rule names, targets).
func own(s string) string { return neutralOwn.Replace(flat(s)) }

// flat masks phone numbers, makes s one line of valid UTF-8 and caps it.
func flat(s string) string {
	s = store.MaskText(s)
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "?")
	}
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || r == '\u2028' || r == '\u2029' || unicode.Is(unicode.Cf, r) {
			return ' '
		}
		return r
	}, s)
	if utf8.RuneCountInString(s) > maxField {
		s = string([]rune(s)[:maxField]) + "…"
	}
	return s
}

// renderer writes messages in one language and format.
type renderer struct {
	lang     string
	markdown bool
	node     string
	loc      *time.Location
}

func (r *renderer) t(en, cn string) string {
	if zh(r.lang) {
		return cn
	}
	return en
}

func (r *renderer) severity(s Severity) string {
	switch s {
	case Critical:
		return r.t("CRITICAL", "严重")
	case Warning:
		return r.t("WARNING", "警告")
	}
	return r.t("INFO", "提示")
}

func (r *renderer) kindName(k Kind) string {
	switch k {
	case KindBan:
		return r.t("Source banned", "来源已封禁")
	case KindCompromised:
		return r.t("Account looks compromised", "账号疑似被盗用")
	case KindBlockedCall:
		return r.t("Call blocked", "呼叫已拦截")
	case KindSpend:
		return r.t("Spend over threshold", "话费超过阈值")
	case KindLockdown:
		return r.t("Lockdown", "紧急锁定")
	case KindUpstreamDown:
		return r.t("PBX not answering", "PBX 无响应")
	case KindStoreDown:
		return r.t("Event store failing", "事件存储故障")
	case KindESLDown:
		return r.t("Event Socket down", "事件接口断开")
	case KindClusterDown:
		return r.t("Cluster link down", "集群连接断开")
	case KindTest:
		return r.t("Test alert", "测试告警")
	}
	return clean(string(k))
}

// title is one line: "[tollguard] WARNING Source banned ×1000", or
// "[tollguard] RESOLVED PBX answers again" at the end of an outage.
func (r *renderer) title(m *Message) string {
	if len(m.Alerts) > 0 && m.Alerts[len(m.Alerts)-1].Resolved && m.Count == 1 {
		what := map[Kind][2]string{
			KindUpstreamDown: {"PBX answers again", "PBX 已恢复"},
			KindStoreDown:    {"Event store works again", "事件存储已恢复"},
			KindESLDown:      {"Event Socket connected again", "事件接口已恢复"},
			KindClusterDown:  {"Cluster link works again", "集群连接已恢复"},
		}[m.Kind]
		if what[0] != "" {
			return "[tollguard] " + r.t("RESOLVED ", "") + r.t(what[0], what[1])
		}
	}
	s := "[tollguard] " + r.severity(m.Severity) + " " + r.kindName(m.Kind)
	if m.Count > 1 {
		s += fmt.Sprintf(" ×%d", m.Count)
	}
	return s
}

func (r *renderer) when(t time.Time) string {
	if r.loc != nil {
		t = t.In(r.loc)
	}
	return t.Format("2006-01-02 15:04:05 MST")
}

// describe is one alert in one sentence, its fields cleaned.
func (r *renderer) describe(a *Alert) string {
	acct, addr, dest, rule, why := clean(a.Account), "", clean(a.Destination), own(a.Rule), clean(a.Reason)
	if a.Addr.IsValid() {
		addr = a.Addr.Unmap().String()
	}
	var b strings.Builder
	add := func(en, cn string, args ...any) { fmt.Fprintf(&b, r.t(en, cn), args...) }
	switch a.Kind {
	case KindBan:
		add("Banned %s", "封禁 %s", addr)
		if acct != "" {
			add(" (account %s)", "（账号 %s）", acct)
		}
		if a.For > 0 {
			add(" for %s", "，时长 %s", a.For)
		}
	case KindCompromised:
		add("Account %s looks compromised", "账号 %s 疑似被盗用", acct)
		if addr != "" {
			add(", from %s", "，来源 %s", addr)
		}
	case KindBlockedCall:
		add("Blocked a call from account %s to %s", "已拦截账号 %s 呼叫 %s", acct, dest)
		if addr != "" {
			add(" (source %s)", "（来源 %s）", addr)
		}
	case KindSpend:
		add("Account %s spent %.2f %s, over the threshold of %.2f", "账号 %s 话费 %.2f %s，超过阈值 %.2f", acct, a.Amount, clean(a.Currency), a.Threshold)
		if dest != "" {
			add("; last call to %s", "；最近呼叫 %s", dest)
		}
	case KindLockdown:
		if a.On {
			add("Lockdown is ON: only allowlisted accounts may place calls", "紧急锁定已开启：仅白名单账号可以外呼")
		} else {
			add("Lockdown is off: calls are allowed again", "紧急锁定已关闭：恢复正常外呼")
		}
	case KindUpstreamDown, KindStoreDown, KindESLDown, KindClusterDown:
		what := map[Kind][2]string{
			KindUpstreamDown: {"The PBX", "PBX"},
			KindStoreDown:    {"The event store", "事件存储"},
			KindESLDown:      {"The FreeSWITCH Event Socket", "FreeSWITCH 事件接口"},
			KindClusterDown:  {"Redis, shared by the guard nodes (this node bans and counts alone meanwhile),", "节点共享的 Redis（期间本节点独立封禁和计数）"},
		}[a.Kind]
		add("%s", "%s", r.t(what[0], what[1]))
		if a.Target != "" {
			add(" %s", " %s", own(a.Target))
		}
		if a.Resolved {
			add(" works again", " 已恢复")
		} else {
			add(" is down", " 故障")
		}
	case KindTest:
		add("Test message from tollguard: this channel works", "tollguard 测试消息：此告警通道工作正常")
	default:
		add("%s", "%s", clean(string(a.Kind)))
	}
	if rule != "" {
		add(", rule %s", "，规则 %s", rule)
	}
	if why != "" {
		add(": %s", "：%s", why)
	}
	if ua := clean(a.UserAgent); ua != "" {
		add(", User-Agent %s", "，User-Agent %s", ua)
	}
	return b.String()
}

// body renders the whole message (without the title for text channels
// that have none: the caller decides).
func (r *renderer) body(m *Message) string {
	var lines []string
	if m.Count > 1 {
		span := m.Until.Sub(m.Since).Round(time.Second)
		lines = append(lines, fmt.Sprintf(r.t("%d alerts of this kind from %s to %s (%s); the first %d:", "%s 至 %s（%s）共 %d 条，前 %d 条："),
			pick(zh(r.lang), []any{m.Count, r.when(m.Since), r.when(m.Until), span, len(m.Alerts)}, []any{r.when(m.Since), r.when(m.Until), span, m.Count, len(m.Alerts)})...))
	}
	for i := range m.Alerts {
		item := r.describe(&m.Alerts[i])
		if m.Count > 1 || r.markdown {
			item = "- " + item
		}
		lines = append(lines, item)
	}
	if m.Count > 1 && len(m.Rules) > 0 {
		lines = append(lines, r.t("By rule: ", "按规则：")+rulesLine(m.Rules))
	}
	when := m.Until
	if when.IsZero() {
		when = time.Now()
	}
	lines = append(lines, fmt.Sprintf(r.t("Node %s, %s", "节点 %s，%s"), clean(r.node), r.when(when)))
	if r.markdown {
		return "#### " + r.title(m) + "\n\n" + strings.Join(lines, "\n\n")
	}
	return r.title(m) + "\n" + strings.Join(lines, "\n")
}

// pick returns en or cn args (word order differs between the languages).
func pick(cn bool, en, zhArgs []any) []any {
	if cn {
		return zhArgs
	}
	return en
}

// rulesLine is "register_failure[0] 800, scanner 200", largest first.
func rulesLine(rules map[string]int) string {
	type rc struct {
		r string
		n int
	}
	var rs []rc
	for r, n := range rules {
		rs = append(rs, rc{r, n})
	}
	sort.Slice(rs, func(i, j int) bool {
		if rs[i].n != rs[j].n {
			return rs[i].n > rs[j].n
		}
		return rs[i].r < rs[j].r
	})
	parts := make([]string, 0, len(rs))
	for _, x := range rs {
		parts = append(parts, fmt.Sprintf("%s %d", own(x.r), x.n))
	}
	return strings.Join(parts, ", ")
}
