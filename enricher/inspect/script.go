package inspect

import (
	"strings"

	"github.com/mcpwatch/mcpwatch/schemas"
)

// scriptRule is a shell or script pattern: any of its needles (in the lowercased text) marks
// it, or, for rules with pairs, both halves of a pair.
type scriptRule struct {
	name    string
	sev     schemas.Severity
	needles []string
	pairs   [][2][]string // one needle of each half must appear (in order, when ordered)
	ordered bool
}

// scriptRules; a flag takes the severity of its most severe rule. Ordinary code (an exec call in a diff a code-review tool
// returns) is low; what only an attack needs (a reverse shell, fetching code and running it,
// wiping disks, decoding and running a payload) is high or critical. Piping a download to a
// shell is medium: READMEs' install instructions do it.
var scriptRules = []scriptRule{
	{name: "reverse_shell", sev: schemas.SeverityCritical, needles: []string{
		"/dev/tcp/", "/dev/udp/", "nc -e ", "ncat -e ", "nc -c ", "netcat -e ", "bash -i >&", "sh -i >&", "mkfifo /tmp/",
		"socat exec:", "socat tcp", "pty.spawn(", "-e /bin/sh", "-e /bin/bash", "exec 5<>/dev/tcp",
		"new-object system.net.sockets.tcpclient"}},
	// Install instructions in READMEs pipe to a shell too: medium, not high.
	{name: "pipe_to_shell", sev: schemas.SeverityMedium, ordered: true, pairs: [][2][]string{
		{{"curl ", "wget ", "iwr ", "invoke-webrequest", "irm ", "invoke-restmethod"},
			{"| sh", "|sh", "| bash", "|bash", "| zsh", "| sudo", "|sudo", "| python", "|python", "| iex", "|iex", "| invoke-expression", "| perl", "| ruby", "| node"}},
		{{"bash <(curl", "bash <(wget", "sh -c \"$(curl", "sh -c \"$(wget", "sh -c '$(curl", "iex(new-object net.webclient)", "iex (new-object net.webclient)", "iex(iwr", "iex (iwr"}, {""}},
	}},
	{name: "encoded_exec", sev: schemas.SeverityHigh, needles: []string{
		"powershell -enc", "powershell.exe -enc", "pwsh -enc", "-encodedcommand", "eval(atob(", "eval(base64_decode(",
		"exec(base64.b64decode(", "eval(base64.b64decode(", "exec(__import__('base64')", "frombase64string(",
		"certutil -decode", "certutil.exe -decode"},
		ordered: true, pairs: [][2][]string{{{"base64 -d", "base64 --decode", "base64 -D"}, {"| sh", "|sh", "| bash", "|bash", "| python"}}}},
	{name: "destructive", sev: schemas.SeverityHigh, needles: []string{
		"rm -rf / ", "rm -rf /\"", "rm -rf /'", "rm -rf /*", "rm -rf ~", "rm -rf --no-preserve-root", "rm -fr / ",
		"mkfs.", "of=/dev/sd", "of=/dev/nvme", "of=/dev/hd", ":(){ :|:& };:", "format c:", "del /f /s /q c:\\",
		"chmod -r 777 /", "> /dev/sda", "shred -", "vssadmin delete shadows", "diskpart"}},
	{name: "download_exec", sev: schemas.SeverityMedium, pairs: [][2][]string{{
		{"curl ", "wget ", "urlretrieve(", "urlopen(", "requests.get(", "invoke-webrequest", "certutil -urlcache", "bitsadmin /transfer", "wget.download("},
		{"chmod +x", "exec(open(", "os.system(\"python", "os.system('python", "nohup python", "start-process", "| iex", "\"nohup\"", "&& ./", "; ./"}}}},
	{name: "persistence", sev: schemas.SeverityMedium, needles: []string{
		"crontab -", "/etc/cron", "/etc/rc.local", "/etc/init.d/", ">> ~/.bashrc", ">>~/.bashrc", ">> ~/.bash_profile",
		">> ~/.zshrc", "authorized_keys", "systemctl enable", "schtasks /create", "currentversion\\run", "launchagents/",
		"launchctl load"}},
	{name: "script_tag", sev: schemas.SeverityMedium, needles: []string{
		"<script", "javascript:", "onerror=", "onload=", "<iframe", "document.cookie", "<svg/onload", "<img src=x"}},
	{name: "exec_call", sev: schemas.SeverityLow, needles: []string{
		"os.system(", "subprocess.", "popen(", "exec(", "eval(", "child_process", "runtime.getruntime().exec",
		"shell_exec(", "passthru(", "system(", "sudo ", "rm -rf ", "invoke-expression", "iex ", "chmod +x", "nohup "}},
}

// script flags shell commands and script code, with the rules it matched.
func (j *job) script(s string, f *features) {
	ls := j.sc.ls
	rules := j.sc.rules[:0]
	sev := schemas.Severity("")
	start, end := -1, 0
	for _, r := range scriptRules {
		at, e := r.match(ls)
		if at < 0 {
			continue
		}
		rules = append(rules, r.name)
		if r.sev.Rank() > sev.Rank() {
			sev = r.sev
		}
		if start < 0 || at < start {
			start = at
		}
		end = max(end, e)
	}
	j.sc.rules = rules[:0]
	if len(rules) == 0 {
		return
	}
	j.add(TypeScript, sev, "rules="+ruleList(rules)+" "+loc(start, end))
}

// match returns the span of the rule's first match in ls, or -1.
func (r *scriptRule) match(ls string) (int, int) {
	for _, n := range r.needles {
		if i := strings.Index(ls, n); i >= 0 {
			return i, i + len(n)
		}
	}
	for _, p := range r.pairs {
		for _, a := range p[0] {
			i := strings.Index(ls, a)
			if i < 0 {
				continue
			}
			from := 0
			if r.ordered {
				from = i + len(a)
			}
			for _, b := range p[1] {
				if b == "" {
					return i, i + len(a)
				}
				if k := strings.Index(ls[from:], b); k >= 0 {
					return min(i, from+k), max(i+len(a), from+k+len(b))
				}
			}
		}
	}
	return -1, -1
}
