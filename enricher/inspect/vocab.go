package inspect

// Word classes of the vocabulary the scan recognises. A word may have several.
const (
	cOverride   uint64 = 1 << iota // ignore, disregard, forget, bypass, …
	cPrior                         // previous, prior, above, all, your, system, …
	cInstr                         // instructions, prompt, rules, guidelines, …
	cEverything                    // everything, anything, what
	cBefore                        // above, before, previously, said, told, …
	cOutput                        // response, reply, answer, output
	cOutputWeak                    // message(s)
	cCodeTarget                    // code, solution, implementation, codebase, algorithm
	cFollowing                     // following, subsequent, below
	cCodeNoun                      // code, snippet, excerpt, block, section, script, …
	cAnalysis                      // explain, review, debug, fix, compare, why, …
	cNeg                           // not, don't, never, without
	cTell                          // tell, inform, mention, notify, reveal, …
	cUser                          // user, human, anyone, operator, …
	cStealth                       // secretly, silently, covertly, …
	cHide                          // hide, conceal
	cSend                          // send, forward, email, upload, post, …
	cSecretObj                     // password, credentials, keys, tokens, history, …
	cGenericObj                    // file, data, contents, document, …
	cRead                          // read, cat, open, access, load, fetch, …
	cLeak                          // print, show, repeat, output, reveal, tell, …
	cAI                            // ai, assistant, agent, llm, model, …
	cImperative                    // verbs that open an instruction about a reply
	cNovel                         // new, updated, real, actual, revised, …
	cPressure                      // hesitate, forget (don't hesitate to…, don't forget to…)
	cShell                         // shell and script words: curl, wget, bash, exec, …
	cShellWeak                     // words that are shell only in context: system, script, …
	cObfuscate                     // replace, scramble, misspell, … (letters)
	cLetters                       // letters, vowels, consonants
	cYou                           // you, your
	cMisc                          // words a rule names itself (you, are, now, from, tool, …)
)

var vocabWords = map[uint64][]string{
	cOverride: {"ignore", "ignoring", "ignores", "disregard", "disregarding", "forget", "forgetting",
		"bypass", "bypassing", "override", "overriding", "overrule", "discard", "abandon", "neglect", "skip",
		"ignora", "ignorar", "ignorez", "ignorer", "ignoriere", "ignorieren", "vergiss", "olvida", "oubliez", "oublie"},
	cPrior: {"previous", "previously", "prior", "above", "earlier", "preceding", "former", "foregoing",
		"aforementioned", "original", "initial", "all", "any", "every", "your", "system", "developer",
		"safety", "existing", "old", "other", "anteriores", "previas", "vorherigen", "bisherigen", "alle",
		"todas", "toutes", "précédentes", "antérieures"},
	cInstr: {"instruction", "instructions", "prompt", "prompts", "rule", "rules", "direction", "directions",
		"guideline", "guidelines", "directive", "directives", "context", "constraint", "constraints", "policy",
		"policies", "programming", "guardrail", "guardrails", "restriction", "restrictions", "command",
		"commands", "message", "messages", "training", "safeguard", "safeguards", "guidance", "orders",
		"instrucciones", "anweisungen", "instruktionen", "consignes", "regeln", "reglas"},
	cEverything: {"everything", "anything", "what"},
	cBefore:     {"above", "before", "previously", "said", "told", "earlier", "prior", "you"},
	cOutput: {"response", "responses", "reply", "replies", "answer", "answers", "output", "outputs",
		"completion", "response's", "reply's", "answer's", "output's"},
	cOutputWeak: {"message", "messages", "message's"},
	cCodeTarget: {"code", "solution", "implementation", "codebase", "algorithm"},
	cFollowing:  {"following", "subsequent", "below"},
	cCodeNoun:   {"code", "snippet", "excerpt", "block", "section", "script", "command", "commands", "payload"},
	cAnalysis: {"explain", "explains", "review", "debug", "fix", "analyze", "analyse", "describe", "why",
		"what", "how", "check", "find", "refactor", "document", "summarize", "summarise", "test", "translate",
		"convert", "optimize", "understand", "identify", "evaluate", "audit", "improve", "rewrite", "comment",
		"critique", "compare", "error", "bug", "wrong", "safe"},
	cNeg:  {"not", "don't", "dont", "never", "without", "no", "doesn't", "shouldn't", "mustn't"},
	cTell: {"tell", "telling", "inform", "informing", "mention", "mentioning", "notify", "notifying", "reveal", "revealing", "alert", "alerting", "disclose", "disclosing", "warn"},
	cUser: {"user", "users", "user's", "human", "humans", "anyone", "operator", "owner", "customer", "person"},
	cStealth: {"secretly", "silently", "quietly", "covertly", "discreetly", "stealthily", "surreptitiously",
		"invisibly"},
	cHide: {"hide", "hiding", "conceal", "concealing"},
	cSend: {"send", "sending", "sends", "forward", "forwarding", "email", "mail", "upload", "uploading", "post",
		"transmit", "exfiltrate", "leak", "share", "submit", "deliver", "relay"},
	cSecretObj: {"password", "passwords", "credential", "credentials", "secret", "secrets", "token", "tokens",
		"apikey", "api_key", "cookie", "cookies", "ssh", "id_rsa", "passwd", "shadow", "env", "keys",
		"conversation", "conversations", "history", "transcript", "chat", "wallet", "mnemonic", "seed",
		"privatekey", "private_key"},
	cGenericObj: {"file", "files", "document", "documents", "data", "contents", "content", "information", "info",
		"details", "emails", "contacts", "attachment", "attachments"},
	cRead: {"read", "reading", "cat", "open", "access", "load", "fetch", "retrieve", "grab", "collect",
		"extract", "dump", "print", "list", "get", "obtain", "pass", "attach"},
	cLeak: {"print", "show", "repeat", "output", "reveal", "tell", "give", "display", "leak", "share", "write",
		"dump", "disclose", "recite", "return"},
	cAI: {"ai", "assistant", "agent", "llm", "model", "chatbot", "claude", "gpt", "chatgpt", "copilot",
		"gemini", "bot", "assistants", "agents", "llms"},
	cImperative: {"render", "jumble", "scramble", "write", "rewrite", "format", "end", "start", "begin", "sign",
		"translate", "encode", "compose", "modify", "add", "include", "replace", "convert", "use", "provide",
		"append", "insert", "remove", "make", "put", "change", "respond", "reply", "answer", "finish",
		"conclude", "mention", "integrate", "enhance", "augment", "introduce", "misspell", "rearrange",
		"anagram", "group", "combine", "substitute", "suggest", "tease", "embed", "prefix", "prepend", "say",
		"state", "output", "print", "spell", "shuffle", "reverse", "sign"},
	cNovel:    {"new", "updated", "real", "actual", "revised", "additional", "secret", "hidden", "true", "latest"},
	cPressure: {"hesitate", "forget"},
	cYou:      {"you", "your"},
	cObfuscate: {"replace", "substitute", "swap", "scramble", "jumble", "shuffle", "rearrange", "misspell",
		"reverse", "encode", "interleave"},
	cLetters: {"letter", "letters", "vowel", "vowels", "consonant", "consonants"},
	cShell: {"curl", "wget", "bash", "sh", "zsh", "nc", "ncat", "netcat", "socat", "rm", "chmod", "chown",
		"sudo", "powershell", "pwsh", "iex", "eval", "exec", "subprocess", "popen", "mkfifo", "crontab",
		"nohup", "dd", "mkfs", "atob", "javascript", "onerror", "onload", "certutil", "bitsadmin", "mshta",
		"rundll32", "regsvr32", "shell_exec", "passthru", "child_process", "urlretrieve", "iwr", "irm",
		"shred", "schtasks", "authorized_keys", "bashrc", "bash_profile", "systemctl", "launchctl",
		"frombase64string", "encodedcommand", "b64decode", "base64_decode", "xmrig", "iframe", "invoke",
		"base64", "vssadmin", "diskpart", "cron", "currentversion", "pty", "urlopen"},
	cShellWeak: {"system", "script", "cookie", "format", "del", "dev", "rc", "init", "shell"},
	cMisc: {"you", "are", "now", "from", "on", "as", "mode", "before", "using", "calling", "invoking", "running",
		"executing", "use", "call", "this", "the", "tool", "tools", "first", "if", "to", "please", "kindly",
		"note", "attention", "dear", "memo", "for", "do", "anything", "developer", "verbatim", "an", "a", "in",
		"jailbroken", "dan", "act", "hidden", "initial", "original", "secret", "also", "then", "just", "simply"},
}

var (
	vocab map[uint64]uint64
	// vocabBloom spares the map lookup for most words: a bit per hash value mod 4096.
	vocabBloom [64]uint64
)

func fnv(s string) uint64 {
	h := uint64(fnvOffset)
	for i := 0; i < len(s); i++ {
		h = (h ^ uint64(s[i])) * fnvPrime
	}
	return h
}

func vocabMaybe(h uint64) bool { return vocabBloom[(h>>6)&63]&(1<<(h&63)) != 0 }

// Hashes of the words rules name.
var (
	hYour, hYou, hAre, hNow, hFrom, hOn, hMode, hDeveloper, hBefore, hThis, hThe, hTool, hTools, hAny,
	hIf, hTo, hPlease, hKindly, hAlso, hThen, hJust, hSimply, hDo, hAnything, hSystem, hInitial, hHidden,
	hOriginal, hSecret, hPrompt, hPrompts, hInstructions, hMessage, hNote, hAttention, hDear, hMemo, hFor,
	hJailbroken, hDAN, hAct, hAs, hAn, hA, hIn, hFirst uint64
	hUsing = map[uint64]bool{}
)

func init() {
	vocab = make(map[uint64]uint64)
	for cls, words := range vocabWords {
		for _, w := range words {
			h := fnv(w)
			vocab[h] |= cls
			vocabBloom[(h>>6)&63] |= 1 << (h & 63)
		}
	}
	for _, p := range []struct {
		h *uint64
		w string
	}{
		{&hYour, "your"}, {&hYou, "you"}, {&hAre, "are"}, {&hNow, "now"}, {&hFrom, "from"}, {&hOn, "on"},
		{&hMode, "mode"}, {&hDeveloper, "developer"}, {&hBefore, "before"}, {&hThis, "this"}, {&hThe, "the"},
		{&hTool, "tool"}, {&hTools, "tools"}, {&hAny, "any"}, {&hIf, "if"}, {&hTo, "to"}, {&hPlease, "please"},
		{&hKindly, "kindly"}, {&hAlso, "also"}, {&hThen, "then"}, {&hJust, "just"}, {&hSimply, "simply"},
		{&hDo, "do"}, {&hAnything, "anything"}, {&hSystem, "system"}, {&hInitial, "initial"},
		{&hHidden, "hidden"}, {&hOriginal, "original"}, {&hSecret, "secret"}, {&hPrompt, "prompt"},
		{&hPrompts, "prompts"}, {&hInstructions, "instructions"}, {&hMessage, "message"}, {&hNote, "note"},
		{&hAttention, "attention"}, {&hDear, "dear"}, {&hMemo, "memo"}, {&hFor, "for"},
		{&hJailbroken, "jailbroken"}, {&hDAN, "dan"}, {&hAct, "act"}, {&hAs, "as"}, {&hAn, "an"}, {&hA, "a"},
		{&hIn, "in"}, {&hFirst, "first"},
	} {
		*p.h = fnv(p.w)
		if _, ok := vocab[*p.h]; !ok {
			panic("BUG: rule word not in the vocabulary: " + p.w)
		}
	}
	for _, w := range []string{"using", "calling", "invoking", "running", "executing", "use", "call"} {
		hUsing[fnv(w)] = true
	}
}
