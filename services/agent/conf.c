/* conf: checks of the agent's configuration (agent_config in agent.h), before anything starts. */
#include "agent_int.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "chunk.h"
#include "key.h"
#include "rate.h"

int
conf_check(const struct agent_config *cfg, char *err, size_t errlen)
{
	if (key_name_check(cfg->ac_node) != 0) {
		snprintf(err, errlen, "invalid node id '%s': want 1 to %d of [A-Za-z0-9._-]",
		    cfg->ac_node != NULL ? cfg->ac_node : "", KEY_NAME_MAX);
		return -EINVAL;
	}
	if (cfg->ac_manager == NULL || cfg->ac_manager[0] == '\0' ||
	    strlen(cfg->ac_manager) >= LIMIT_URL_MAX || cfg->ac_listen == NULL ||
	    cfg->ac_listen[0] == '\0' || strlen(cfg->ac_listen) >= LIMIT_URL_MAX) {
		snprintf(err, errlen, "manager and listen URLs must have 1 to %d bytes",
		    LIMIT_URL_MAX - 1);
		return -EINVAL;
	}
	if (cfg->ac_advertise != NULL && (cfg->ac_advertise[0] == '\0' ||
	    strlen(cfg->ac_advertise) >= LIMIT_URL_MAX || strstr(cfg->ac_advertise, "://") == NULL)) {
		snprintf(err, errlen, "advertised address '%.64s': want a URL such as tcp://host:port, "
		    "shorter than %d bytes", cfg->ac_advertise, LIMIT_URL_MAX);
		return -EINVAL;
	}
	if (cfg->ac_interval_ms < AGENT_INTERVAL_MIN_MS) {
		snprintf(err, errlen, "checkpoint interval %u ms is below %u ms", cfg->ac_interval_ms,
		    AGENT_INTERVAL_MIN_MS);
		return -EINVAL;
	}
	if (cfg->ac_local_dir != NULL &&
	    (cfg->ac_local_dir[0] != '/' || strlen(cfg->ac_local_dir) > AGENT_LOCAL_DIR_MAX)) {
		snprintf(err, errlen, "local-dir '%s': want an absolute path of at most %d bytes",
		    cfg->ac_local_dir, AGENT_LOCAL_DIR_MAX);
		return -EINVAL;
	}
	if (cfg->ac_upload_rate > RATE_MAX) {
		snprintf(err, errlen, "upload rate %" PRIu64 " B/s: at most %llu (0: no cap)",
		    cfg->ac_upload_rate, RATE_MAX);
		return -EINVAL;
	}
	if (cfg->ac_ckpt_sched != AGENT_SCHED_NICE && cfg->ac_ckpt_sched != AGENT_SCHED_BATCH &&
	    cfg->ac_ckpt_sched != AGENT_SCHED_IDLE) {
		snprintf(err, errlen, "checkpoint CPU policy %d: want nice, batch or idle",
		    (int)cfg->ac_ckpt_sched);
		return -EINVAL;
	}
	if (cfg->ac_nlabels > LIMIT_LABELS_MAX) {
		snprintf(err, errlen, "%zu labels: at most %d", cfg->ac_nlabels, LIMIT_LABELS_MAX);
		return -EINVAL;
	}
	if (cfg->ac_chunk_min != 0 || cfg->ac_chunk_avg != 0 || cfg->ac_chunk_max != 0) {
		struct chunk_params cp;
		if (chunk_params_init(cfg->ac_chunk_min, cfg->ac_chunk_avg, cfg->ac_chunk_max, &cp) != 0) {
			snprintf(err, errlen, "chunk sizes %u/%u/%u: want min < avg < max, %u B to %u B",
			    cfg->ac_chunk_min, cfg->ac_chunk_avg, cfg->ac_chunk_max, CHUNK_MIN_LIMIT,
			    CHUNK_MAX_LIMIT);
			return -EINVAL;
		}
	}
	for (size_t i = 0; i < cfg->ac_nlabels; i++) {
		const struct agent_label *l = &cfg->ac_labels[i];
		if (key_name_check(l->al_key) != 0 || l->al_value == NULL ||
		    strlen(l->al_value) > LIMIT_LABEL_VALUE_MAX) {
			snprintf(err, errlen,
			    "invalid label '%s': key of [A-Za-z0-9._-], value of at most %d bytes",
			    l->al_key != NULL ? l->al_key : "", LIMIT_LABEL_VALUE_MAX);
			return -EINVAL;
		}
	}
	return 0;
}
