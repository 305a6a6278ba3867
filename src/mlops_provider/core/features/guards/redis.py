"""Redis online store: a Lua script compares each entity's stored timestamp and writes only newer rows."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mlops_provider.core.features import compat
from mlops_provider.core.features.guards.base import WriteGuard

# Entities per Redis script call: large enough to amortise round trips, small enough not to stall Redis.
REDIS_ENTITIES_PER_SCRIPT = 500

# Compares the stored protobuf Timestamp (field 1 seconds, field 2 nanos, varints) with the new one and
# writes the entity's hash only when the new row is not older. KEYS: entity hashes. ARGV: ts field, ttl,
# then per entity: seconds, nanos, serialised timestamp, feature count, field/value pairs.
REDIS_GUARD_SCRIPT = """
local function varint(s, pos)
  local value, scale = 0, 1
  while pos <= #s do
    local byte = string.byte(s, pos)
    pos = pos + 1
    value = value + (byte % 128) * scale
    if byte < 128 then return value, pos end
    scale = scale * 128
  end
  return value, pos
end
local function stored_time(s)
  local seconds, nanos, pos = 0, 0, 1
  while pos <= #s do
    local tag = string.byte(s, pos)
    local value
    value, pos = varint(s, pos + 1)
    if tag == 8 then seconds = value elseif tag == 16 then nanos = value end
  end
  return seconds, nanos
end
local ts_field, ttl, arg, written = ARGV[1], tonumber(ARGV[2]), 3, 0
for _, key in ipairs(KEYS) do
  local seconds, nanos = tonumber(ARGV[arg]), tonumber(ARGV[arg + 1])
  local stamp, count = ARGV[arg + 2], tonumber(ARGV[arg + 3])
  arg = arg + 4
  local newer = true
  local previous = redis.call('HGET', key, ts_field)
  if previous then
    local old_seconds, old_nanos = stored_time(previous)
    newer = old_seconds < seconds or (old_seconds == seconds and old_nanos <= nanos)
  end
  if newer then
    local fields = {ts_field, stamp}
    for i = 0, 2 * count - 1 do fields[#fields + 1] = ARGV[arg + i] end
    redis.call('HSET', key, unpack(fields))
    if ttl > 0 then redis.call('EXPIRE', key, ttl) end
    written = written + count
  end
  arg = arg + 2 * count
end
return written
"""


class RedisAtomicCompareAndSet(WriteGuard):
    strategy = "atomic-compare-and-set"
    description = (
        "Redis Lua script that compares each entity's stored event timestamp and writes its features only "
        "when the new timestamp is equal or newer; Redis runs each script atomically"
    )

    def __init__(self, online_store: Any) -> None:
        super().__init__(online_store)
        self._script: Callable[..., Any] | None = None  # redis Script, registered on the first write

    def write(self, config: Any, table: Any, data: list, progress: Any) -> None:
        from google.protobuf.timestamp_pb2 import Timestamp

        store_config = config.online_store
        client = compat.redis_client(self.online_store, store_config)
        script = self._script
        if script is None:
            script = self._script = client.register_script(REDIS_GUARD_SCRIPT)
        view = compat.redis_view_name(table, config)
        ttl = int(store_config.key_ttl_seconds or 0)
        # A cluster only runs a script over keys of one hash slot: one entity per call there.
        per_call = 1 if compat.is_redis_cluster(store_config) else REDIS_ENTITIES_PER_SCRIPT
        entity_key_of = compat.redis_entity_key_encoder(config)
        field_keys: dict[str, bytes] = {}
        written = 0
        for begin in range(0, len(data), per_call):
            keys: list[bytes] = []
            args: list[Any] = [f"_ts:{view}", ttl]
            for entity_key, values, event_ts, _ in data[begin : begin + per_call]:
                keys.append(entity_key_of(entity_key))
                stamp = Timestamp()
                stamp.FromDatetime(compat.tz_aware(event_ts))
                args += [stamp.seconds, stamp.nanos, stamp.SerializeToString(), len(values)]
                for feature_name, value in values.items():
                    if feature_name not in field_keys:
                        field_keys[feature_name] = compat.redis_field_key(view, feature_name)
                    args += [field_keys[feature_name], value.SerializeToString()]
            written += int(script(keys=keys, args=args, client=client))
        self._count(table, data, written)
