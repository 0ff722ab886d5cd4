/* The test bed's pod sandbox ("pause") process: holds the pod's namespaces,
 * reaps zombies, exits on SIGINT/SIGTERM. Built statically by
 * hack/node.sh because no registry can be reached for registry.k8s.io/pause. */
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

static void quit(int sig) {
  (void)sig;
  _exit(0);
}

static void reap(int sig) {
  (void)sig;
  while (waitpid(-1, NULL, WNOHANG) > 0) {
  }
}

int main(void) {
  signal(SIGINT, quit);
  signal(SIGTERM, quit);
  signal(SIGCHLD, reap);
  for (;;) pause();
}
