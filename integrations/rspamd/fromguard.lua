--[[
fromguard for rspamd: each message's header block goes to `fromguard serve` (POST /check)
through rspamd's asynchronous HTTP client; the answer becomes symbols.

  FROMGUARD_DECEPTIVE, FROMGUARD_INVALID, FROMGUARD_LEGACY
      the message's verdict; the symbol's options are the finding codes of that
      severity (address-in-display-name, several-from-fields, ...)
  FROMGUARD_FAIL
      no answer (fromguard down, slow, or answering an error): the option says why;
      the message is scanned as usual

With `add_headers = true`, the header fields the policy adds on tag and warn
(X-MS-Exchange-P2FromRegexMatch with the Exchange preset) go into the milter reply.
Install: this file in /etc/rspamd/plugins.d/, its settings in local.d/fromguard.conf
(the README's rspamd page).
]]

local N = 'fromguard'

local rspamd_http = require 'rspamd_http'
local rspamd_logger = require 'rspamd_logger'
local lua_mime = require 'lua_mime'
local lua_util = require 'lua_util'
local ucl = require 'ucl'

local settings = {
  url = 'http://127.0.0.1:8025/check',
  timeout = 2.0,
  add_headers = false,
  scores = {
    FROMGUARD_DECEPTIVE = 6.0,
    FROMGUARD_INVALID = 4.0,
    FROMGUARD_LEGACY = 0.0,
    FROMGUARD_FAIL = 0.0,
  },
}

-- The verdicts that give a symbol, and the severity whose codes are its options.
local SYMBOLS = {
  legacy = 'FROMGUARD_LEGACY',
  deceptive = 'FROMGUARD_DECEPTIVE',
  invalid = 'FROMGUARD_INVALID',
}
local DESCRIPTIONS = {
  FROMGUARD_LEGACY = 'From: obsolete but honest syntax (RFC 5322 section 4)',
  FROMGUARD_DECEPTIVE = 'From: a reader can be shown a sender that is not the sender',
  FROMGUARD_INVALID = 'From: not RFC 5322, the sender is in doubt',
  FROMGUARD_FAIL = 'fromguard gave no answer (the option says why)',
}

local function codes_of(answer, severity)
  local codes, seen = {}, {}
  for _, finding in ipairs(answer.findings or {}) do
    if finding.severity == severity and not seen[finding.code] then
      seen[finding.code] = true
      codes[#codes + 1] = finding.code
    end
  end
  return codes
end

local function add_headers(task, answer)
  local add, order = {}, {}
  for index, field in ipairs(answer.headers or {}) do
    local name, value = field[1], field[2]
    -- The policy's order, at the top of the header block, as the milter inserts them.
    add[name] = { value = value, order = index - 1 }
    order[#order + 1] = name
  end
  if #order > 0 then
    lua_mime.modify_headers(task, { add = add, order = order })
  end
end

local function check(task)
  local function answered(err, code, body)
    if err then
      task:insert_result('FROMGUARD_FAIL', 1.0, tostring(err))
      return
    end
    if code ~= 200 then
      task:insert_result('FROMGUARD_FAIL', 1.0, string.format('HTTP %s', code))
      return
    end
    local parser = ucl.parser()
    local ok, parse_error = parser:parse_string(tostring(body))
    if not ok then
      task:insert_result('FROMGUARD_FAIL', 1.0, 'bad answer: ' .. tostring(parse_error))
      return
    end
    local answer = parser:get_object()
    if type(answer.error) == 'string' then
      -- fromguard's own fail mode (timeout, internal error): no verdict to score
      -- (a JSON null is ucl.null, which is true in Lua)
      task:insert_result('FROMGUARD_FAIL', 1.0, answer.error)
      return
    end
    local symbol = SYMBOLS[answer.verdict]
    if symbol then
      task:insert_result(symbol, 1.0, codes_of(answer, answer.verdict))
    end
    if settings.add_headers then
      add_headers(task, answer)
    end
  end

  local headers = {}
  local queue_id = task:get_queue_id()
  if queue_id then
    headers['X-Queue-Id'] = queue_id
  end
  local sent = rspamd_http.request({
    task = task,
    url = settings.url,
    method = 'post',
    body = task:get_raw_headers(),
    headers = headers,
    mime_type = 'message/rfc822',
    timeout = settings.timeout,
    callback = answered,
  })
  if not sent then
    task:insert_result('FROMGUARD_FAIL', 1.0, 'cannot send to ' .. settings.url)
  end
end

local opts = rspamd_config:get_all_opt(N)
if opts then
  settings = lua_util.override_defaults(settings, opts)
end

local parent = rspamd_config:register_symbol({
  name = 'FROMGUARD_CHECK',
  type = 'callback',
  callback = check,
  flags = 'nostat',
  group = N,
})
for name, score in pairs(settings.scores) do
  rspamd_config:register_symbol({
    name = name,
    parent = parent,
    type = 'virtual',
    score = score,
    group = N,
    description = DESCRIPTIONS[name],
  })
end
rspamd_logger.infox(rspamd_config, '%s: asking %s', N, settings.url)
