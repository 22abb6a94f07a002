/*
 * The raw floor: what the kernel alone costs for the transfers the library makes.
 * AF_UNIX SOCK_SEQPACKET socketpair + fork, blocking calls, no serialization.
 *
 * Usage: floor MODE PARENT_CPU CHILD_CPU WARMUP COUNT
 *   rtt     parent sends 64 B, child echoes it; COUNT round trips        -> {"us": per round trip}
 *   stream  child sends COUNT 64 B packets, parent receives               -> {"msgs": msg/s}
 *   mib     child sends COUNT x 1 MiB in 64 KiB packets, parent receives  -> {"gbps": GB/s}
 *   fd      round trips of 64 B each carrying one fd (SCM_RIGHTS) both ways -> {"rtps": round trips/s}
 * A CPU of -1 leaves that process unpinned. Throughput is timed at the receiver from the first
 * measured packet to the last, after WARMUP messages. Prints one JSON line on stdout.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define SMALL 64
#define CHUNK (64 * 1024)
#define MIB (1024 * 1024)

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void die(const char *what) {
  perror(what);
  exit(2);
}

static void pin(int cpu) {
  if (cpu < 0) return;
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  if (sched_setaffinity(0, sizeof set, &set) != 0) die("sched_setaffinity");
}

static void send_all(int fd, const void *buf, size_t len) {
  for (;;) {
    ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);
    if (n == (ssize_t)len) return;
    if (n < 0 && errno == EINTR) continue;
    die("send");
  }
}

static size_t recv_one(int fd, void *buf, size_t cap) {
  for (;;) {
    ssize_t n = recv(fd, buf, cap, 0);
    if (n > 0) return (size_t)n;
    if (n < 0 && errno == EINTR) continue;
    if (n == 0) {
      fprintf(stderr, "floor: peer closed early\n");
      exit(2);
    }
    die("recv");
  }
}

static void send_fd(int sock, const void *buf, size_t len, int fd) {
  struct iovec iov = {(void *)buf, len};
  union {
    char buf[CMSG_SPACE(sizeof(int))];
    struct cmsghdr align;
  } u;
  memset(&u, 0, sizeof u);
  struct msghdr msg = {0};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = u.buf;
  msg.msg_controllen = sizeof u.buf;
  struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(sizeof(int));
  memcpy(CMSG_DATA(c), &fd, sizeof(int));
  for (;;) {
    ssize_t n = sendmsg(sock, &msg, MSG_NOSIGNAL);
    if (n == (ssize_t)len) return;
    if (n < 0 && errno == EINTR) continue;
    die("sendmsg");
  }
}

static int recv_fd(int sock, void *buf, size_t cap) {
  struct iovec iov = {buf, cap};
  union {
    char buf[CMSG_SPACE(sizeof(int))];
    struct cmsghdr align;
  } u;
  struct msghdr msg = {0};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = u.buf;
  msg.msg_controllen = sizeof u.buf;
  for (;;) {
    ssize_t n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) die("recvmsg");
    struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
    if (!c || c->cmsg_type != SCM_RIGHTS) {
      fprintf(stderr, "floor: no descriptor received\n");
      exit(2);
    }
    int fd;
    memcpy(&fd, CMSG_DATA(c), sizeof(int));
    return fd;
  }
}

int main(int argc, char **argv) {
  if (argc != 6) {
    fprintf(stderr, "usage: floor rtt|stream|mib|fd PARENT_CPU CHILD_CPU WARMUP COUNT\n");
    return 2;
  }
  const char *mode = argv[1];
  int pcpu = atoi(argv[2]), ccpu = atoi(argv[3]);
  long warm = atol(argv[4]), count = atol(argv[5]);
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0) die("socketpair");
  int big = 4 * MIB;
  setsockopt(sv[0], SOL_SOCKET, SO_RCVBUF, &big, sizeof big);
  setsockopt(sv[1], SOL_SOCKET, SO_SNDBUF, &big, sizeof big);
  static char buf[MIB];
  memset(buf, 7, sizeof buf);

  pid_t pid = fork();
  if (pid < 0) die("fork");
  if (pid == 0) {
    close(sv[0]);
    pin(ccpu);
    int s = sv[1];
    if (!strcmp(mode, "rtt")) {
      for (long i = 0; i < warm + count; i++) {
        size_t n = recv_one(s, buf, SMALL);
        send_all(s, buf, n);
      }
    } else if (!strcmp(mode, "stream")) {
      for (long i = 0; i < warm + count; i++) send_all(s, buf, SMALL);
    } else if (!strcmp(mode, "mib")) {
      for (long i = 0; i < warm + count; i++)
        for (int off = 0; off < MIB; off += CHUNK) send_all(s, buf + off, CHUNK);
    } else if (!strcmp(mode, "fd")) {
      for (long i = 0; i < warm + count; i++) {
        int fd = recv_fd(s, buf, SMALL);
        send_fd(s, buf, SMALL, fd);
        close(fd);
      }
    }
    _exit(0);
  }
  close(sv[1]);
  pin(pcpu);
  int s = sv[0];
  double t0 = 0, t1 = 0;
  if (!strcmp(mode, "rtt")) {
    for (long i = 0; i < warm + count; i++) {
      if (i == warm) t0 = now_s();
      send_all(s, buf, SMALL);
      recv_one(s, buf, SMALL);
    }
    t1 = now_s();
    printf("{\"us\":%.4f}\n", (t1 - t0) * 1e6 / (double)count);
  } else if (!strcmp(mode, "stream")) {
    for (long i = 0; i < warm + count; i++) {
      recv_one(s, buf, SMALL);
      if (i == warm) t0 = now_s();
    }
    t1 = now_s();
    printf("{\"msgs\":%.1f}\n", (double)(count - 1) / (t1 - t0));
  } else if (!strcmp(mode, "mib")) {
    static char dst[MIB];
    for (long i = 0; i < warm + count; i++) {
      for (int off = 0; off < MIB; off += CHUNK) recv_one(s, dst + off, CHUNK);
      if (i == warm) t0 = now_s();
    }
    t1 = now_s();
    printf("{\"gbps\":%.4f}\n", (double)(count - 1) * MIB / (t1 - t0) / 1e9);
  } else if (!strcmp(mode, "fd")) {
    int file = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (file < 0) die("open");
    for (long i = 0; i < warm + count; i++) {
      if (i == warm) t0 = now_s();
      send_fd(s, buf, SMALL, file);
      close(recv_fd(s, buf, SMALL));
    }
    t1 = now_s();
    printf("{\"rtps\":%.1f}\n", (double)count / (t1 - t0));
  } else {
    fprintf(stderr, "floor: unknown mode %s\n", mode);
    kill(pid, SIGKILL);
    return 2;
  }
  int status;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : 3;
}
