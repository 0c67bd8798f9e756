#!/usr/bin/env bash
# A real single-host SLURM cluster for the tests (tests/test_slurm.py) and for trying the template's
# SLURM path by hand: Debian's slurm-wlm with munge, accounting through slurmdbd and a private
# MariaDB (without accounting sacct fails, and submitit cannot see a job that died), and two nodes
# n1 and n2 on this host (two slurmd, each with its own port, spool, PID and log file).
#
#   .ci/slurm.sh install   # apt-get the packages (root)
#   .ci/slurm.sh start     # start the daemons unless they answer already; prints the SLURM_CONF to export
#   .ci/slurm.sh stop      # stop what start started, by the PIDs it recorded
#
# No systemd or cgroups are needed: processes are tracked through /proc (proctrack/linuxproc) and
# tasks are not bound (task/none). Everything lives under $DCGAN_SLURM_DIR (default /tmp/dcgan-slurm).
set -euo pipefail
DIR=${DCGAN_SLURM_DIR:-/tmp/dcgan-slurm}
HOST=$(hostname -s)
CPUS=$(nproc)
PACKAGES="slurm-wlm slurmdbd munge mariadb-server"
PORT_CTLD=16817 PORT_DBD=16820 PORT_N1=16821 PORT_N2=16822 PORT_DB=16823
export SLURM_CONF=$DIR/slurm.conf

say() { echo "slurm.sh: $*" >&2; }

install() {
    if command -v slurmctld slurmd slurmdbd munged mariadbd >/dev/null 2>&1 \
        && [ "$(command -v slurmctld slurmd slurmdbd munged mariadbd | wc -l)" = 5 ]; then
        return
    fi
    say "installing $PACKAGES"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $PACKAGES >/dev/null
}

wait_for() {  # wait_for <seconds> <what> <command...>
    local seconds=$1 what=$2
    shift 2
    for _ in $(seq $((seconds * 5))); do
        if "$@" >/dev/null 2>&1; then return 0; fi
        sleep 0.2
    done
    say "$what did not come up in ${seconds}s; its log is under $DIR"
    report
    exit 1
}

report() {  # what a failed start leaves to read, on stderr (CI shows it)
    {
        echo "--- sinfo -N (state, reason)"
        sinfo -N -h -o "%N %T %E" 2>&1 || true
        echo "--- daemons"
        ps -o pid,stat,etime,args -C slurmctld,slurmd,slurmdbd,munged,mariadbd 2>&1 || true
        for log in "$DIR"/slurmctld.log "$DIR"/slurmd-n1.log "$DIR"/slurmd-n2.log "$DIR"/slurmdbd.log; do
            [ -f "$log" ] && { echo "--- tail $log"; tail -n 20 "$log"; }
        done
    } >&2
}

nodes_idle() { [ "$(sinfo -h -N -t idle -o %N | sort -u | wc -l)" = 2 ]; }

configure() {
    mkdir -p "$DIR"/{ctld,spool-n1,spool-n2,mysql,mariadb}
    local memory=$(( $(awk '/MemTotal/ {print int($2 / 1024)}' /proc/meminfo) / 2 ))
    cat > "$DIR/slurm.conf" <<EOF
ClusterName=dcgan
SlurmctldHost=$HOST(127.0.0.1)
SlurmctldPort=$PORT_CTLD
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
MpiDefault=none
ReturnToService=2
SlurmdParameters=config_overrides
KillWait=10
MinJobAge=600
StateSaveLocation=$DIR/ctld
SlurmdSpoolDir=$DIR/spool-%n
SlurmctldPidFile=$DIR/slurmctld.pid
SlurmdPidFile=$DIR/slurmd-%n.pid
SlurmctldLogFile=$DIR/slurmctld.log
SlurmdLogFile=$DIR/slurmd-%n.log
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=127.0.0.1
AccountingStoragePort=$PORT_DBD
NodeName=n1 NodeHostname=$HOST NodeAddr=127.0.0.1 Port=$PORT_N1 CPUs=$CPUS RealMemory=$memory State=UNKNOWN
NodeName=n2 NodeHostname=$HOST NodeAddr=127.0.0.1 Port=$PORT_N2 CPUs=$CPUS RealMemory=$memory State=UNKNOWN
PartitionName=debug Nodes=n1,n2 Default=YES MaxTime=INFINITE State=UP
EOF
    cat > "$DIR/slurmdbd.conf" <<EOF
AuthType=auth/munge
DbdHost=localhost
DbdAddr=127.0.0.1
DbdPort=$PORT_DBD
SlurmUser=root
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort=$PORT_DB
StorageUser=slurm
StoragePass=slurm
StorageLoc=slurm_acct_db
PidFile=$DIR/slurmdbd.pid
LogFile=$DIR/slurmdbd.log
EOF
    chmod 600 "$DIR/slurmdbd.conf"
}

start() {
    # no sinfo without a config: it would look for one in DNS (a minute where no DNS answers)
    if [ -f "$SLURM_CONF" ] && sinfo -h >/dev/null 2>&1; then
        say "a SLURM cluster answers already (SLURM_CONF=$SLURM_CONF)"
        echo "export SLURM_CONF=$SLURM_CONF"
        return
    fi
    install
    configure
    # the node names are the addresses Lightning and torch connect to (SLURM_NODELIST): make them this host
    if ! getent hosts n1 n2 >/dev/null || [ "$(getent hosts n1 n2 | wc -l)" != 2 ]; then
        echo "127.0.0.1 n1 n2  # dcgan .ci/slurm.sh" >> /etc/hosts
    fi
    : > "$DIR/pids"
    if ! munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
        mkdir -p /run/munge && chown munge:munge /run/munge
        runuser -u munge -- munged
        wait_for 10 munged sh -c 'munge -n | unmunge'
        echo /run/munge/munged.pid >> "$DIR/pids"
    fi
    if [ ! -d "$DIR/mysql/mysql" ]; then
        mariadb-install-db --user=mysql --datadir="$DIR/mysql" --skip-test-db >"$DIR/mariadb-install.log" 2>&1
    fi
    chown -R mysql:mysql "$DIR/mysql" "$DIR/mariadb"  # the server runs as mysql: its socket, PID and log
    local db="$DIR/mariadb"
    mariadbd --user=mysql --datadir="$DIR/mysql" --socket="$db/mysql.sock" --bind-address=127.0.0.1 \
        --port=$PORT_DB --pid-file="$db/mariadb.pid" --log-error="$db/mariadb.log" &
    wait_for 30 MariaDB mariadb --socket="$db/mysql.sock" -e 'select 1'
    echo "$db/mariadb.pid" >> "$DIR/pids"
    mariadb --socket="$db/mysql.sock" -e "create database if not exists slurm_acct_db;
        create user if not exists 'slurm'@'127.0.0.1' identified by 'slurm';
        grant all on slurm_acct_db.* to 'slurm'@'127.0.0.1'; flush privileges;"
    slurmdbd
    echo "$DIR/slurmdbd.pid" >> "$DIR/pids"
    wait_for 30 slurmdbd sacctmgr -n list cluster
    sacctmgr -i add cluster dcgan >/dev/null 2>&1 || true  # there already after a restart
    slurmctld
    echo "$DIR/slurmctld.pid" >> "$DIR/pids"
    wait_for 30 slurmctld sinfo -h
    for node in n1 n2; do
        slurmd -N $node
        echo "$DIR/slurmd-$node.pid" >> "$DIR/pids"
    done
    # a node that has not registered after 30 s is started again (once), one marked down is resumed
    for _ in $(seq 150); do nodes_idle && break; sleep 0.2; done
    if ! nodes_idle; then
        say "the nodes are not idle after 30 s; starting again those that are not"
        report
        for node in $(comm -23 <(printf 'n1\nn2\n') <(sinfo -h -N -t idle -o %N | sort -u)); do
            pkill -F "$DIR/slurmd-$node.pid" 2>/dev/null && sleep 1
            slurmd -N "$node"
            scontrol update nodename="$node" state=resume 2>/dev/null || true
        done
    fi
    wait_for 90 "the nodes n1 and n2" nodes_idle
    say "a cluster of 2 nodes with $CPUS CPUs each is up: partition debug; its logs are in $DIR"
    echo "export SLURM_CONF=$SLURM_CONF"
}

stop() {
    [ -f "$DIR/pids" ] || { say "nothing started here ($DIR/pids is missing)"; return; }
    tac "$DIR/pids" | while read -r pidfile; do
        if [ -f "$pidfile" ]; then
            kill "$(cat "$pidfile")" 2>/dev/null || true
        fi
    done
    rm -f "$DIR/pids"
    say "stopped"
}

case "${1:-}" in
    install) install ;;
    start) start ;;
    stop) stop ;;
    *) echo "usage: $0 install|start|stop" >&2; exit 2 ;;
esac
