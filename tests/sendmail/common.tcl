# common.tcl: helpers for tests/sendmail/*.test (sourced by each file),
# on top of tests/queue/common.tcl (q::provider, q::config, q::spool...).
#
#   sm::config PPORT ?-listen PORT? ?-delivery MODE? ?-relay TEXT?
#       q::config with the spool, control socket and listen address
#       written in the file (subrelay-sendmail reads them from it; the
#       harness's -o overrides are the daemon's only). -listen: the port
#       the file names (default: a closed one); a daemon is started on
#       port 0 all the same (sm::daemon).
#   sm::daemon CONFIG        daemon::start with -o relay.listen=127.0.0.1:0
#   sm::run ARGS ?-stdin TEXT? ?-argv0 NAME? ?-prefix CMD?
#       runs subrelay-sendmail ARGS (in the background: the event loop
#       keeps running) with TEXT on stdin -> dict {code N stdout TEXT
#       stderr TEXT}; -argv0 runs it through a symlink of that name;
#       -prefix runs it under CMD (a list, e.g. setpriv ... as another user)
#   sm::maildrop CONFIG      the drop directory the configuration implies
#   sm::spool CONFIG         its spool directory

source [file join [file dirname [info script]] .. queue common.tcl]

namespace eval sm {
    variable seq 0
}

proc sm::binary {} {
    set bin [file join $harness::builddir subrelay-sendmail]
    if {![file executable $bin]} { skip "subrelay-sendmail not built ($bin)" }
    return $bin
}

proc sm::config {pport args} {
    array set o [list -listen [q::closed_port] -delivery queue -relay ""]
    foreach {k v} $args {
        if {![info exists o($k)]} { error "sm::config: unknown option $k" }
        set o($k) $v
    }
    set n [incr sm::seq]
    set spool [file join [testdir] spool$n]
    set ctl [file join $harness::rundir ctl-sm$n-[pid].sock]
    set text [q::config $pport -delivery $o(-delivery) \
        -relay "spool = $spool\ncontrol = $ctl\nmax_message_size = 64k\n$o(-relay)"]
    return [string map [list "listen = 127.0.0.1:0" "listen = 127.0.0.1:$o(-listen)"] $text]
}

proc sm::daemon {config args} {
    daemon::start $config -args {-o relay.listen=127.0.0.1:0} {*}$args
}

proc sm::spool {config} {
    regexp -line {^spool = (.*)$} $config -> dir
    return $dir
}
proc sm::maildrop {config} { file join [sm::spool $config] maildrop }

proc sm::run {cliargs args} {
    array set o {-stdin "" -argv0 "" -prefix {}}
    foreach {k v} $args {
        if {![info exists o($k)]} { error "sm::run: unknown option $k" }
        set o($k) $v
    }
    set bin [sm::binary]
    if {$o(-argv0) ne ""} {
        set link [file join [testdir] $o(-argv0)]
        if {![file exists $link]} { file link -symbolic $link $bin }
        set bin $link
    }
    set n [incr sm::seq]
    set in [file join [testdir] sm-$n.stdin]
    set f [open $in wb]
    puts -nonewline $f $o(-stdin)
    close $f
    set err [file join [testdir] sm-$n.stderr]
    set h [bgexec /bin/sh -c {in=$1; err=$2; shift 2; exec "$@" <"$in" 2>"$err"} sh $in $err {*}$o(-prefix) $bin {*}$cliargs]
    set res [bgwait $h 20000]
    set f [open $err r]
    set stderr [read $f]
    close $f
    return [dict create code [dict get $res code] stdout [dict get $res output] stderr $stderr]
}
