/*
 * sysinfo: the capacity a node reports to the manager (as the seed's info
 * port did): available and total memory from /proc/meminfo, the number of
 * online CPUs, and the 1-minute load average from /proc/loadavg.
 */
#ifndef CKPT_AGENT_SYSINFO_H
#define CKPT_AGENT_SYSINFO_H

#include <stdint.h>

struct sysinfo_cap {
	uint64_t sc_mem_free;   /* bytes: MemAvailable (MemFree on old kernels) */
	uint64_t sc_mem_total;  /* bytes: MemTotal */
	uint32_t sc_cpus;       /* online CPUs */
	uint32_t sc_load_milli; /* 1-minute load average * 1000 */
};

/* Reads the running system. -errno when /proc cannot be read or parsed. */
int sysinfo_read(struct sysinfo_cap *ret_cap);

/* Parsers of the /proc texts (NUL-terminated); -EINVAL when a value is missing. */
int sysinfo_parse_meminfo(const char *text, uint64_t *ret_free, uint64_t *ret_total);
int sysinfo_parse_loadavg(const char *text, uint32_t *ret_load_milli);

#endif
