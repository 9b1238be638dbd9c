"""ember's thread pool: the C that runs a kernel's parallel loop on several cores.

Code generation outlines the body of each outermost parallel loop into a function
``void body(int64_t begin, int64_t end, void* env)`` (the variables it uses travel in
``env``) and calls :data:`POOL_SOURCE`'s ``ember_parallel_for(begin, end, body, &env)``::

    for (int64_t i = 0; i < 96; ++i) { ... }        # a PARALLEL loop in loop IR
    ember_parallel_for(0, 96, k_par0, &k_par0_env); # what the kernel runs instead

Why not OpenMP's ``#pragma omp parallel for``: a parallel region ends in a barrier that
every thread of the team must reach, so when the OS deschedules one worker (another
runtime's spinning pool in the same process, a busy shared machine) the whole loop waits
for it, once per kernel, dozens of times per inference. Here the loop is cut into
chunks that any thread may claim, the caller claims chunks too, and it waits only for
chunks that were claimed, never for a worker that has not shown up; while it waits it
yields its core (the thread it waits for may need it). The worst case on a crowded
machine is the one-thread speed, not a multiple of it.

How workers wait (the trade-off ``docs/codegen.md`` measures): after a loop they spin
for ``EMBER_POOL_SPIN_US`` microseconds (default 100: the gap between two kernels of an
inference is far shorter), then sleep on a condition variable, handing the core back to
whatever runs next; a worker idle for a second exits (a process that loads many
libraries keeps no idle threads). Threads: ``ember_set_num_threads(n)`` (the runtime
calls it per run), else ``EMBER_NUM_THREADS``, else ``OMP_NUM_THREADS``, else the cores
this process may use. A second thread that calls into the pool while it runs a loop
runs its own loop serially. One pool per library: its symbols are weak (one copy however
many translation units define it) and hidden (libraries loaded side by side do not
share or clash).
"""

from __future__ import annotations

CHUNKS_PER_THREAD = 4
"""A parallel loop is cut into up to this many chunks per thread: enough for a thread
that starts late or runs slow to leave its share to the others, few enough that claiming
(one atomic operation) costs nothing next to a chunk."""

POOL_DECLARATIONS = """\
/* ember's thread pool (defined once per library; ember/codegen/thread_pool.py). */
typedef void (*ember_task_fn)(int64_t begin, int64_t end, void* env);
__attribute__((visibility("hidden"))) void ember_parallel_for(int64_t begin, int64_t end,
                                                             ember_task_fn fn, void* env);
"""
"""What a kernel's translation unit needs to call the pool."""

POOL_SOURCE = r"""
/* ---- ember's thread pool (ember/codegen/thread_pool.py says how and why) ---- */
#define EMBER_POOL_MAX 256
#define EMBER_CHUNKS_PER_THREAD @CHUNKS@
#define EMBER_HIDDEN __attribute__((weak, visibility("hidden")))

struct ember_pool {
  pthread_mutex_t lock;  /* sleeping, spawning, idle exit */
  pthread_cond_t wake;
  atomic_int busy;       /* 1 while a caller runs a loop on the pool */
  atomic_int alive;      /* worker threads */
  atomic_int sleepers;   /* workers waiting on `wake` */
  atomic_int joined;     /* workers that joined the current loop */
  atomic_uint_fast64_t gen;  /* bumped once per loop; its low 32 bits name the loop */
  atomic_uint_fast64_t next; /* (loop << 32) | the next chunk to claim */
  atomic_int_fast64_t done;  /* chunks of the current loop finished */
  atomic_int_fast64_t nchunks;
  atomic_int helpers;    /* workers the current loop wants */
  ember_task_fn fn;      /* the current loop, written before `next` is published */
  void* env;
  int64_t begin, end, step;
  atomic_int default_team;  /* ember_set_num_threads, else the environment, else cores */
  long spin_ns;
  pthread_once_t once;
};

EMBER_HIDDEN struct ember_pool ember_pool_g = {
    .lock = PTHREAD_MUTEX_INITIALIZER, .wake = PTHREAD_COND_INITIALIZER, .once = PTHREAD_ONCE_INIT};
EMBER_HIDDEN __thread int ember_pool_team;  /* this thread's ember_set_num_threads */

static inline void ember_cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__) || defined(__arm__)
  __asm__ __volatile__("yield");
#endif
}

static inline long ember_now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (long)t.tv_sec * 1000000000L + t.tv_nsec;
}

EMBER_HIDDEN int ember_pool_env_threads(const char* name) {
  const char* text = getenv(name);
  if (text == NULL || *text == 0) return 0;
  long n = strtol(text, NULL, 10);  /* "4,2": the outer level, as OpenMP reads it */
  return n > 0 ? (int)(n < EMBER_POOL_MAX ? n : EMBER_POOL_MAX) : 0;
}

/* Cores this process may run on (its affinity mask: taskset, cgroup CPU sets). The raw
 * system call, because sched_getaffinity() would need _GNU_SOURCE in every kernel file. */
EMBER_HIDDEN int ember_pool_cores(void) {
#ifdef SYS_sched_getaffinity
  unsigned long mask[64];
  long bytes = syscall(SYS_sched_getaffinity, 0, sizeof mask, mask);
  if (bytes > 0) {
    int n = 0;
    for (long k = 0; k < bytes / (long)sizeof mask[0]; ++k) n += __builtin_popcountl(mask[k]);
    if (n > 0) return n;
  }
#endif
  long n = sysconf(_SC_NPROCESSORS_ONLN);
  return n > 0 ? (int)n : 1;
}

EMBER_HIDDEN void ember_pool_after_fork(void) {
  /* The child has only the forking thread: no workers, nothing running. */
  struct ember_pool* p = &ember_pool_g;
  pthread_mutex_init(&p->lock, NULL);
  pthread_cond_init(&p->wake, NULL);
  atomic_store(&p->alive, 0);
  atomic_store(&p->sleepers, 0);
  atomic_store(&p->busy, 0);
}

EMBER_HIDDEN void ember_pool_init(void) {
  struct ember_pool* p = &ember_pool_g;
  int n = ember_pool_env_threads("EMBER_NUM_THREADS");
  if (n == 0) n = ember_pool_env_threads("OMP_NUM_THREADS");
  if (n == 0) n = ember_pool_cores();
  int expected = 0;  /* an ember_set_num_threads before the first loop wins */
  atomic_compare_exchange_strong(&p->default_team, &expected,
                                 n < 1 ? 1 : (n < EMBER_POOL_MAX ? n : EMBER_POOL_MAX));
  const char* spin = getenv("EMBER_POOL_SPIN_US");
  long us = spin && *spin ? strtol(spin, NULL, 10) : 100;
  p->spin_ns = (us < 0 ? 0 : us) * 1000L;
  pthread_atfork(NULL, NULL, ember_pool_after_fork);
}

/* Claim and run chunks of loop `id` until none is left (or another loop began). */
EMBER_HIDDEN void ember_pool_work(uint32_t id) {
  struct ember_pool* p = &ember_pool_g;
  for (;;) {
    uint64_t v = atomic_load_explicit(&p->next, memory_order_acquire);
    if ((uint32_t)(v >> 32) != id) return;
    int64_t c = (int64_t)(v & 0xffffffffu);
    if (c >= atomic_load_explicit(&p->nchunks, memory_order_relaxed)) return;
    if (!atomic_compare_exchange_weak_explicit(&p->next, &v, v + 1, memory_order_acq_rel,
                                               memory_order_relaxed))
      continue;
    /* Chunk c is ours, so loop `id` cannot finish before we do: its fields stay put. */
    int64_t lo = p->begin + c * p->step;
    int64_t hi = lo + p->step < p->end ? lo + p->step : p->end;
    p->fn(lo, hi, p->env);
    atomic_fetch_add_explicit(&p->done, 1, memory_order_release);
  }
}

EMBER_HIDDEN void* ember_pool_worker(void* arg) {
  struct ember_pool* p = &ember_pool_g;
  uint64_t seen = (uint64_t)(uintptr_t)arg;
  for (;;) {
    uint64_t g = atomic_load_explicit(&p->gen, memory_order_acquire);
    if (g == seen) {
      long until = ember_now_ns() + p->spin_ns;
      for (int k = 0; (g = atomic_load_explicit(&p->gen, memory_order_acquire)) == seen; ++k) {
        if ((k & 63) == 63 && ember_now_ns() > until) break;
        ember_cpu_relax();
      }
    }
    if (g == seen) {  /* still nothing: sleep, and leave after a second of it */
      pthread_mutex_lock(&p->lock);
      atomic_fetch_add(&p->sleepers, 1);
      int idle = 0;
      while ((g = atomic_load(&p->gen)) == seen && !idle) {
        struct timespec t;
        clock_gettime(CLOCK_REALTIME, &t);
        t.tv_sec += 1;
        idle = pthread_cond_timedwait(&p->wake, &p->lock, &t) == ETIMEDOUT;
      }
      atomic_fetch_sub(&p->sleepers, 1);
      if ((g = atomic_load(&p->gen)) == seen) {
        atomic_fetch_sub(&p->alive, 1);
        pthread_mutex_unlock(&p->lock);
        return NULL;
      }
      pthread_mutex_unlock(&p->lock);
    }
    seen = g;
    if (atomic_fetch_add(&p->joined, 1) < atomic_load(&p->helpers)) ember_pool_work((uint32_t)g);
  }
}

/* Start workers until `want` are alive (fewer if the system refuses threads). */
EMBER_HIDDEN void ember_pool_spawn(int want) {
  struct ember_pool* p = &ember_pool_g;
  pthread_mutex_lock(&p->lock);
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  pthread_attr_setstacksize(&attr, 8u << 20);  /* kernels keep scratch on the stack */
  while (atomic_load(&p->alive) < want) {
    pthread_t t;
    void* seen = (void*)(uintptr_t)atomic_load(&p->gen);
    if (pthread_create(&t, &attr, ember_pool_worker, seen) != 0) break;
    atomic_fetch_add(&p->alive, 1);
  }
  pthread_attr_destroy(&attr);
  pthread_mutex_unlock(&p->lock);
}

/* Run fn over [begin, end) in chunks on up to the team's threads; returns when done. */
EMBER_HIDDEN void ember_parallel_for(int64_t begin, int64_t end, ember_task_fn fn, void* env) {
  struct ember_pool* p = &ember_pool_g;
  int64_t n = end - begin;
  if (n <= 0) return;
  pthread_once(&p->once, ember_pool_init);
  int team = ember_pool_team > 0 ? ember_pool_team : atomic_load(&p->default_team);
  if (team > n) team = (int)n;
  if (team <= 1 || atomic_exchange(&p->busy, 1)) {  /* one thread, or the pool is taken */
    fn(begin, end, env);
    return;
  }
  if (atomic_load(&p->alive) < team - 1) ember_pool_spawn(team - 1);
  int64_t chunks = (int64_t)team * EMBER_CHUNKS_PER_THREAD;
  if (chunks > n) chunks = n;
  int64_t step = (n + chunks - 1) / chunks;
  chunks = (n + step - 1) / step;
  p->fn = fn;
  p->env = env;
  p->begin = begin;
  p->end = end;
  p->step = step;
  atomic_store_explicit(&p->nchunks, chunks, memory_order_relaxed);
  atomic_store_explicit(&p->done, 0, memory_order_relaxed);
  atomic_store_explicit(&p->joined, 0, memory_order_relaxed);
  atomic_store_explicit(&p->helpers, team - 1, memory_order_relaxed);
  uint32_t id = (uint32_t)(atomic_load(&p->gen) + 1);
  atomic_store_explicit(&p->next, (uint64_t)id << 32, memory_order_release);
  atomic_fetch_add(&p->gen, 1);  /* seq_cst: pairs with a sleeper's check (no lost wake-up) */
  if (atomic_load(&p->sleepers) > 0) {
    pthread_mutex_lock(&p->lock);
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->lock);
  }
  ember_pool_work(id);
  /* Wait for chunks others claimed; yield the core after a while: the thread running
   * the last chunk may be waiting for it. */
  for (int k = 0; atomic_load_explicit(&p->done, memory_order_acquire) < chunks; ++k) {
    if (k < 2000) ember_cpu_relax(); else sched_yield();
  }
  atomic_store_explicit(&p->busy, 0, memory_order_release);
}
/* ---- end of the thread pool ---- */
""".replace("@CHUNKS@", str(CHUNKS_PER_THREAD))
"""The pool's C source (after the dialect's header, which includes pthread.h,
stdatomic.h, sched.h, sys/syscall.h, time.h, errno.h and unistd.h)."""

SET_NUM_THREADS = """\
/* Called by the loader and per run with the thread count (when > 0): this thread's team
 * and the default of threads that never call it. Weak: every kernel's translation unit
 * defines it, and one library may link many of them. */
__attribute__((weak)) void ember_set_num_threads(int32_t n) {
  if (n <= 0) return;
  if (n > EMBER_POOL_MAX) n = EMBER_POOL_MAX;
  ember_pool_team = n;
  atomic_store(&ember_pool_g.default_team, n);
}
"""
"""``ember_set_num_threads`` of the pool dialect (the OpenMP one calls omp_set_num_threads)."""
